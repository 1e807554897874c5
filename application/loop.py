"""The trading loop: market data → agents → arbitration → allocation → risk → venue → fills.

The same loop runs every mode; only the clock, the market data and the gateway differ.
Each step records marks and applies fills; every `decision_every` bars it also decides,
and records the decision with its inputs so an auditor can see why each order exists.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from application.allocation import AllocationPolicy, intents, target_weights
from application.arbitration import adapt, arbitrate, liquidity_score
from application.errors import RiskRejected
from application.order_router import OrderRouter
from application.ports import (
    Candle,
    MarketData,
    Metrics,
    NoMetrics,
)
from application.trading import TradingApp
from domain.base import event_clock
from domain.commands import PlaceOrder
from domain.decision_log import DecisionLog, decision_log_id
from domain.errors import DomainError
from domain.order import CANCELED, TERMINAL
from domain.signals import Signal
from domain.values import OrderType, Side

ZERO = Decimal(0)


class SignalAgent(Protocol):
    name: str
    lookback: int

    def run(self, instrument: str, candles: Sequence[Candle]) -> Signal | None: ...


class RegimeView(Protocol):
    @property
    def scale(self) -> Decimal: ...

    @property
    def label(self) -> str: ...

    @property
    def reason(self) -> str: ...


class RegimeFilter(Protocol):
    lookback: int

    def scale(self, candles: Sequence[Candle]) -> RegimeView: ...


@dataclass(frozen=True)
class LoopConfig:
    decision_every: int = 12  # bars between decisions: hourly on 5-minute bars
    order_ttl: timedelta = timedelta(minutes=15)  # cancel what has not filled by then
    lookback: int = 120


@dataclass
class StageTimes:
    """Seconds spent per stage, for the backtest benchmark's time shares."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start


class TradingLoop:
    def __init__(
        self,
        app: TradingApp,
        market: MarketData,
        router: OrderRouter,
        agents: Sequence[SignalAgent],
        regime: RegimeFilter,
        session_id: UUID,
        policy: AllocationPolicy,
        config: LoopConfig = LoopConfig(),
        metrics: Metrics | None = None,
        signal_source: Callable[[], Sequence[Signal]] | None = None,
    ) -> None:
        self.app = app
        # external signals (e.g. the webhook's SignalInbox), added to the agents' views
        self.signal_source = signal_source
        self.market = market
        self.router = router
        self.agents = list(agents)
        self.regime = regime
        self.session_id = session_id
        self.policy = policy
        self.config = config
        self.times = StageTimes()
        self.metrics: Metrics = metrics or NoMetrics()
        self.steps = 0
        self._marked: dict[str, datetime] = {}
        self._sent: dict[UUID, datetime] = {}  # orders this loop sent, and when
        self._previous_signals: list[tuple[Signal, Decimal]] = []
        self._log_id = decision_log_id(session_id)

    # --- one step per bar ---------------------------------------------------------------
    def step(self) -> None:
        started = time.perf_counter()
        try:
            with self.times.stage("marks"):
                self._record_marks()
            with self.times.stage("fills"):
                self._apply_fills()
            with self.times.stage("orders"):
                self._cancel_stale()
            if self.steps % self.config.decision_every == 0:
                self.decide()
            self.steps += 1
        finally:
            self.metrics.observe_cycle(time.perf_counter() - started)

    def _record_marks(self) -> None:
        now = self.app.clock()
        prices: dict[str, Decimal] = {}
        for instrument in self.market.instruments():
            bars = self.market.candles(instrument, now, limit=1)
            if bars and self._marked.get(instrument) != bars[-1].opens_at:
                self._marked[instrument] = bars[-1].opens_at
                prices[instrument] = bars[-1].close
        if prices:
            self.app.observe_marks(prices)

    def _apply_fills(self) -> None:
        self.metrics.count_fills(self.router.poll_fills().applied)

    def _cancel_stale(self) -> None:
        """Cancel at the venue what expired, or what the kill switch canceled locally."""
        now = self.app.clock()
        for order_id, sent_at in list(self._sent.items()):
            status = self.app.order(order_id).status
            if status in TERMINAL and status != CANCELED:
                del self._sent[order_id]
            elif status == CANCELED or now - sent_at >= self.config.order_ttl:
                self._cancel(order_id, "expired unfilled")

    def _cancel(self, order_id: UUID, reason: str) -> None:
        if self.router.cancel(order_id, reason) in TERMINAL:
            del self._sent[order_id]  # otherwise the venue was unreachable: try next step

    def adopt(self, order_ids: Iterable[UUID]) -> None:
        """Orders a stopped run left open at the venue: canceled when they expire or the
        next plan replaces them, as if this loop had sent them."""
        for order_id in order_ids:
            self._sent.setdefault(order_id, self.app.order(order_id).created_on)

    def close_out(self) -> None:
        """Cancel what still rests at the venue, e.g. at the end of a backtest."""
        self._apply_fills()
        for order_id in list(self._sent):
            self._cancel(order_id, "plan replaced")

    # --- decisions ------------------------------------------------------------------------
    def decide(self) -> None:
        now = self.app.clock()
        if self.app.desk().kill_state == "HALTED":
            return  # trading stops until an operator resets; fills and marks go on
        with self.times.stage("orders"):
            self.close_out()  # a new plan replaces whatever still rests from the last one
        desk = self.app.desk()
        with self.times.stage("agents"):
            history = {
                i: self.market.candles(i, now, limit=self.config.lookback)
                for i in self.market.instruments()
            }
            signals: list[Signal] = []
            spent: dict[str, float] = defaultdict(float)
            for candles in history.values():
                for agent in self.agents:
                    if len(candles) < agent.lookback:
                        continue
                    began = time.perf_counter()
                    signal = agent.run(candles[-1].instrument, candles)
                    spent[agent.name] += time.perf_counter() - began
                    if signal is not None:
                        signals.append(signal)
            if self.signal_source is not None:
                signals.extend(s for s in self.signal_source() if s.instrument in history)
            for name, seconds in spent.items():
                self.metrics.observe_agent(name, seconds)
            regimes = {
                i: self.regime.scale(c)
                for i, c in history.items()
                if len(c) >= self.regime.lookback
            }
        with self.times.stage("arbitration"), event_clock(self.app.clock):
            log = self._decision_log()
            weights = self._adapt_weights(log, history, now)
            liquidity = self._liquidity(history)
            scores = arbitrate(
                signals, weights, liquidity, {i: r.scale for i, r in regimes.items()}
            )
            targets = target_weights(scores, self.policy)
            nav = desk.nav()
            plan = (
                []
                if nav is None
                else intents(
                    targets,
                    nav,
                    desk.positions,
                    {i: m.price for i, m in desk.marks.items()},
                    self.app.catalog,
                    self.policy,
                )
            )
        with self.times.stage("orders"):
            outcomes = [
                self._place(
                    intent.instrument, intent.side.value, intent.quantity, intent.limit_price
                )
                for intent in plan
            ]
        with self.times.stage("arbitration"), event_clock(self.app.clock):
            log.record_cycle(
                at=now,
                signals=[s.to_dict() for s in signals],
                regime={
                    i: {"scale": str(r.scale), "label": r.label, "reason": r.reason}
                    for i, r in regimes.items()
                },
                scores=scores,
                targets=targets,
                orders=outcomes,
            )
            self.app.save(log)
            self._previous_signals = [(s, history[s.instrument][-1].close) for s in signals]

    def _decision_log(self) -> DecisionLog:
        try:
            log: DecisionLog = self.app.repository.get(self._log_id)
        except AggregateNotFoundError:  # the first decision of the session
            log = DecisionLog(
                id=self._log_id,
                session_id=self.session_id,
                weights={a.name: Decimal(1) for a in self.agents},
            )
        return log

    def _adapt_weights(
        self, log: DecisionLog, history: dict[str, Sequence[Candle]], now: datetime
    ) -> dict[str, Decimal]:
        """Each agent's last signals, scored by what the price did since: bounded nudge."""
        outcomes: dict[str, list[Decimal]] = defaultdict(list)
        for signal, then in self._previous_signals:
            bars = history.get(signal.instrument)
            if bars and then > 0 and signal.direction:
                outcomes[signal.agent].append(signal.direction * (bars[-1].close / then - 1))
        if not outcomes:
            return dict(log.weights)
        realized = {a: sum(v, ZERO) / len(v) for a, v in sorted(outcomes.items())}
        weights = adapt(log.weights, realized)
        if weights != log.weights:
            log.adapt_weights(
                at=now,
                weights=weights,
                evidence={a: str(v.quantize(Decimal("1e-8"))) for a, v in realized.items()},
            )
        return weights

    @staticmethod
    def _liquidity(history: dict[str, Sequence[Candle]]) -> dict[str, Decimal]:
        volumes = {
            i: sum((c.close * c.volume for c in bars[-12:]), ZERO)
            for i, bars in history.items()
            if bars
        }
        reference = max(volumes.values(), default=ZERO) / 4
        return {i: liquidity_score(v, reference) for i, v in volumes.items()}

    def _place(
        self, instrument: str, side: str, quantity: Decimal, price: Decimal
    ) -> dict[str, Any]:
        order_id = self.app.ids()
        outcome: dict[str, Any] = {
            "order_id": str(order_id),
            "instrument": instrument,
            "side": side,
            "quantity": str(quantity),
            "limit_price": str(price),
        }
        try:
            self.app.execute(
                PlaceOrder(
                    order_id=order_id,
                    session_id=self.session_id,
                    instrument=instrument,
                    side=Side(side),
                    order_type=OrderType.LIMIT,
                    quantity=quantity,
                    limit_price=price,
                )
            )
        except RiskRejected as refused:
            return {**outcome, "outcome": "rejected", "guard": refused.rejection.guard}
        except DomainError as refused:
            return {**outcome, "outcome": "invalid", "reason": str(refused)}
        self._sent[order_id] = self.app.clock()
        outcome["outcome"] = self.router.submit(order_id)
        if outcome["outcome"] in TERMINAL:
            del self._sent[order_id]
        return outcome
