"""The trading loop: market data → agents → arbitration → allocation → risk → venue → fills.

The same loop runs every mode; only the clock, the market data and the gateway differ.
Each step records marks and applies fills; every `decision_every` bars it also decides,
and records the decision with its inputs so an auditor can see why each order exists.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
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
from application.ports import (
    Candle,
    ExchangeGateway,
    ExchangeOrder,
    ExchangeUnavailable,
    MarketData,
    OrderRequest,
    SubmissionUnknown,
)
from application.trading import TradingApp
from domain.base import event_clock
from domain.commands import AcknowledgeOrder, CancelOrder, PlaceOrder, RejectOrder, SubmitOrder
from domain.decision_log import DecisionLog, decision_log_id
from domain.errors import DomainError
from domain.order import TERMINAL
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


def client_order_id(order_id: UUID) -> str:
    """Derived from the Order id, so a resubmission can never create a second order."""
    return f"ais{order_id.hex[:29]}"


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


@dataclass
class _Live:
    order_id: UUID
    instrument: str
    placed_at: datetime


class TradingLoop:
    def __init__(
        self,
        app: TradingApp,
        market: MarketData,
        gateway: ExchangeGateway,
        agents: Sequence[SignalAgent],
        regime: RegimeFilter,
        session_id: UUID,
        policy: AllocationPolicy,
        config: LoopConfig = LoopConfig(),
    ) -> None:
        self.app = app
        self.market = market
        self.gateway = gateway
        self.agents = list(agents)
        self.regime = regime
        self.session_id = session_id
        self.policy = policy
        self.config = config
        self.times = StageTimes()
        self.steps = 0
        self._marked: dict[str, datetime] = {}
        self._live: dict[str, _Live] = {}  # client order id -> what we sent
        self._seen_trades: set[str] = set()
        self._last_fill_at: datetime | None = None
        self._previous_signals: list[tuple[Signal, Decimal]] = []
        self._log_id = decision_log_id(session_id)

    # --- one step per bar ---------------------------------------------------------------
    def step(self) -> None:
        with self.times.stage("marks"):
            self._record_marks()
        with self.times.stage("fills"):
            self._apply_fills()
        with self.times.stage("orders"):
            self._cancel_stale()
        if self.steps % self.config.decision_every == 0:
            self.decide()
        self.steps += 1

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
        for fill in self.gateway.fills(self._last_fill_at):
            self._last_fill_at = fill.at
            if fill.trade_id in self._seen_trades:
                continue
            self._seen_trades.add(fill.trade_id)
            live = self._live.get(fill.client_order_id or "")
            if live is None:
                self.app.engage_kill_switch(
                    reason=f"fill {fill.trade_id} for an order we never sent", by="loop"
                )
                continue
            self.app.record_fill(
                live.order_id,
                trade_id=fill.trade_id,
                quantity=fill.quantity,
                price=fill.price,
                fee=fill.fee,
                filled_at=fill.at,
            )

    def _cancel_stale(self) -> None:
        """Cancel at the venue what expired, or what the kill switch canceled locally."""
        now = self.app.clock()
        for client_id, live in list(self._live.items()):
            order = self.app.order(live.order_id)
            expired = now - live.placed_at >= self.config.order_ttl
            if order.status in TERMINAL and order.status != "CANCELED":
                del self._live[client_id]
                continue
            if order.status == "CANCELED" or expired:
                self._cancel_at_venue(client_id, live)

    def _cancel_at_venue(self, client_id: str, live: _Live) -> None:
        try:
            self.gateway.cancel(client_id, live.instrument)
        except ExchangeUnavailable:
            return  # try again next step; the order stays tracked
        self._apply_fills()  # a fill that raced the cancel is a fact, applied first
        order = self.app.order(live.order_id)
        if order.status not in TERMINAL:
            self.app.execute(CancelOrder(order_id=live.order_id, reason="expired unfilled"))
        del self._live[client_id]

    def close_out(self) -> None:
        """Cancel what still rests at the venue, e.g. at the end of a backtest."""
        self._apply_fills()
        for client_id, live in list(self._live.items()):
            self._cancel_at_venue(client_id, live)

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
            signals = [
                signal
                for instrument, candles in history.items()
                for agent in self.agents
                if len(candles) >= agent.lookback
                and (signal := agent.run(instrument, candles)) is not None
            ]
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
        outcome["outcome"] = self._send(order_id, instrument, side, quantity, price)
        return outcome

    def _send(
        self, order_id: UUID, instrument: str, side: str, quantity: Decimal, price: Decimal
    ) -> str:
        client_id = client_order_id(order_id)
        submit = SubmitOrder(order_id=order_id, client_order_id=client_id)
        try:
            [token] = self.app.execute(submit)
        except RiskRejected as refused:
            self.app.execute(RejectOrder(order_id=order_id, reason=str(refused)))
            return f"held back: {refused.rejection.guard}"
        # Second check in order management, before anything leaves the building.
        self.app.verifier.verify(token, submit, token.target_version)
        request = OrderRequest(client_id, instrument, side, "LIMIT", quantity, price)
        self._live[client_id] = _Live(order_id, instrument, self.app.clock())
        try:
            answer: ExchangeOrder | None = self.gateway.submit(request)
        except SubmissionUnknown:
            answer = self.gateway.lookup(client_id, instrument)
        except ExchangeUnavailable as down:
            answer = ExchangeOrder(client_id, "", "rejected", ZERO, f"venue unavailable: {down}")
        if answer is None or answer.status == "rejected":
            reason = answer.reason if answer and answer.reason else "not at the venue"
            self.app.execute(RejectOrder(order_id=order_id, reason=reason))
            del self._live[client_id]
            return "rejected by venue"
        self.app.execute(
            AcknowledgeOrder(order_id=order_id, exchange_order_id=answer.exchange_order_id)
        )
        return "sent"
