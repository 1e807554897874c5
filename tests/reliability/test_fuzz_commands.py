"""Hypothesis drives the TradingApp's commands on a real SQLite file, checking the
invariants after every step.

Rules: place (limit orders on BTC/ETH, sides, sizes and prices drawn freely, so every
guard gets hit), fill (parts of open orders), cancel, mark (prices move, time passes),
kill, reset, snapshot (what the venue would report), replay (rebuild the read models).
After every step:
- no state change without a valid approval: every new Order/Position/TradingSession
  event is re-verified by the offline auditor (signature, command, target, version,
  digest, validity window);
- NAV = cash + sum(qty x mark) from an independent fold of the fills and marks this test
  made, equal to the desk's NAV and to the portfolio read model's;
- positions equal that fold;
- an approved order that adds risk never leaves the worst-case position weight or gross
  leverage above the limits, nor its notional above the order limit;
- the replay rule: live read models equal a rebuild from position 0 (digest by digest).
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from adapters.clock import SeededIds, SimulatedClock
from adapters.event_log import StoredEventSource
from adapters.persistence import eventsourcing_env
from adapters.read_store import SqlReadStore, engines
from adapters.settings import load_catalog, load_limits
from application.errors import RiskRejected
from application.trading import TradingApp
from domain.commands import AcknowledgeOrder, CancelOrder, SubmitOrder
from domain.errors import DomainError
from domain.values import Side
from projections.audit_approvals import ApprovalAuditor
from projections.registry import all_projections
from projections.replay import verify
from projections.runner import Projector
from tests.conftest import CONFIG, KEYS, START, start_session
from tests.http_helpers import place
from tests.reliability.venue import state

INSTRUMENTS = ("BTC-USDT", "ETH-USDT")
LOTS = {"BTC-USDT": Decimal("0.001"), "ETH-USDT": Decimal("0.01")}
TICK = Decimal("0.01")
CAPITAL = Decimal(100000)
FEE_RATE = Decimal("0.001")


class CommandMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.home = Path(tempfile.mkdtemp(prefix="ais-fuzz-"))
        self.clock = SimulatedClock(START)
        self.limits = load_limits(CONFIG / "risk.toml")
        self.app = TradingApp(
            account_id="acct",
            limits=self.limits,
            catalog=load_catalog(CONFIG / "instruments.toml"),
            keys=KEYS,
            clock=self.clock,
            ids=SeededIds(1),
            env=eventsourcing_env(None, self.home),
        )
        self.session_id = start_session(self.app, str(CAPITAL))
        engine, schema = engines(None, self.home)
        self.source = StoredEventSource(eventsourcing_env(None, self.home))
        self.store = SqlReadStore(engine, schema)
        self.scratch = SqlReadStore(engine, schema, prefix="rs_")
        self.projections = all_projections()
        self.projector = Projector(self.source, self.store, self.projections)
        self.portfolio = next(p for p in self.projections if p.name == "portfolio")
        self.auditor = ApprovalAuditor(KEYS)
        self.audited = 0
        # The independent fold: what this test did, not what the app says.
        self.cash = CAPITAL
        self.held = dict.fromkeys(INSTRUMENTS, Decimal(0))
        self.marks = {"BTC-USDT": Decimal(50000), "ETH-USDT": Decimal(3000)}
        self.trades = 0
        self.rejected = 0
        self.placed = 0

    def teardown(self) -> None:
        print(
            f"fuzz: {self.audited} events, {self.placed} orders placed, {self.rejected} "
            f"refused, {self.trades} fills"
        )
        self.store.close()
        self.source.close()
        self.app.close()
        shutil.rmtree(self.home, ignore_errors=True)

    # --- helpers -------------------------------------------------------------------------
    def open_orders(self) -> list[UUID]:
        return [UUID(i) for i in sorted(self.app.desk().open_orders)]

    def nav(self) -> Decimal:
        return self.cash + sum((q * self.marks[i] for i, q in self.held.items()), Decimal(0))

    def worst_case(self, instrument: str) -> Decimal:
        """Position plus every open buy, or minus every open sell, whichever is larger."""
        buys = sells = Decimal(0)
        for order_id in self.open_orders():
            order = self.app.order(order_id)
            if order.instrument == instrument:
                left = order.quantity - order.filled_quantity
                if order.side == "BUY":
                    buys += left
                else:
                    sells += left
        held = self.held[instrument]
        return max(abs(held + buys), abs(held - sells))

    # --- rules ---------------------------------------------------------------------------
    @initialize(lots=st.integers(1, 100))
    def first_order(self, lots: int) -> None:
        """Something open from the start, so fills and cancels have a target early."""
        self.place("BTC-USDT", Side.BUY, lots, 0, 1)

    @rule(
        instrument=st.sampled_from(INSTRUMENTS),
        side=st.sampled_from(Side),
        lots=st.one_of(st.integers(1, 200), st.integers(1, 3000)),
        # basis points from the mark: mostly inside the collar, sometimes outside
        offset=st.one_of(st.integers(-60, 60), st.integers(-700, 700)),
        fills=st.integers(0, 2),  # fills at once (the fill rule adds more later)
    )
    def place(self, instrument: str, side: Side, lots: int, offset: int, fills: int) -> None:
        self.clock.advance(3)
        quantity = LOTS[instrument] * lots
        price = (self.marks[instrument] * (1 + Decimal(offset) / 10_000)).quantize(TICK)
        before = self.worst_case(instrument)
        try:
            order_id = place(
                self.app,
                self.session_id,
                instrument=instrument,
                side=side,
                quantity=str(quantity),
                price=str(price),
            )
        except (RiskRejected, DomainError):
            self.rejected += 1
            return
        self.placed += 1
        limits, nav = self.limits, self.nav()
        assert quantity * price <= limits.max_order_notional
        after = self.worst_case(instrument)
        if after > before:  # it adds risk: the exposure limits hold with it
            assert after * self.marks[instrument] / nav <= limits.max_position_weight
            gross = sum((self.worst_case(i) * self.marks[i] for i in INSTRUMENTS), Decimal(0))
            assert gross / nav <= limits.max_gross_leverage
        self.app.execute(SubmitOrder(order_id=order_id, client_order_id=f"c{order_id.hex[:20]}"))
        self.app.execute(AcknowledgeOrder(order_id=order_id, exchange_order_id=f"x{self.trades}"))
        for share in (40, 100)[-fills:] if fills else ():
            self.fill_part(order_id, share)

    @precondition(lambda self: bool(self.app.desk().open_orders))
    @rule(pick=st.integers(0, 1000), share=st.integers(1, 100))
    def fill(self, pick: int, share: int) -> None:
        orders = self.open_orders()
        self.fill_part(orders[pick % len(orders)], share)

    def fill_part(self, order_id: UUID, share: int) -> None:
        """Fill `share` % of what is left (at least a lot), at the order's limit price."""
        order = self.app.order(order_id)
        if order.status not in ("OPEN", "PARTIALLY_FILLED"):
            return
        lot = LOTS[order.instrument]
        left = order.quantity - order.filled_quantity
        quantity = max(lot, (left * share / 100).quantize(lot)) if share < 100 else left
        quantity = min(quantity, left)
        assert order.limit_price is not None
        price = order.limit_price
        fee = (quantity * price * FEE_RATE).quantize(TICK)
        self.trades += 1
        self.clock.advance(1)
        try:
            applied = self.app.record_fill(
                order.id,
                trade_id=f"t{self.trades}",
                quantity=quantity,
                price=price,
                fee=fee,
                filled_at=self.clock(),
            )
        except RiskRejected:
            return  # a fill anomaly (far from the mark): recorded, kill switch engaged
        assert applied
        sign = Side(order.side).sign
        self.held[order.instrument] += sign * quantity
        self.cash -= sign * quantity * price + fee

    @precondition(lambda self: bool(self.app.desk().open_orders))
    @rule(pick=st.integers(0, 1000))
    def cancel(self, pick: int) -> None:
        orders = self.open_orders()
        self.app.execute(CancelOrder(order_id=orders[pick % len(orders)], reason="fuzz"))

    @rule(
        instrument=st.sampled_from(INSTRUMENTS),
        move=st.integers(-300, 300),  # basis points
        wait=st.integers(0, 400),  # seconds: beyond 300 the other marks would be stale
    )
    def mark(self, instrument: str, move: int, wait: int) -> None:
        self.clock.advance(wait)
        for name in INSTRUMENTS:  # both, so neither goes stale
            price = self.marks[name] * (1 + Decimal(move if name == instrument else 0) / 10_000)
            self.marks[name] = price.quantize(TICK)
        self.app.observe_marks(dict(self.marks))

    @rule(reset=st.booleans())
    def kill(self, reset: bool) -> None:
        """Engage the kill switch (open orders are canceled), or reset it if engaged."""
        if reset and self.app.desk().kill_state == "HALTED":
            self.app.reset_kill_switch(reason="fuzz drill over", by="fuzzer")
            assert self.app.desk().kill_state == "ACTIVE"
            return
        self.app.engage_kill_switch(reason="fuzz drill", by="fuzzer")
        assert self.app.desk().kill_state == "HALTED"
        assert not self.open_orders()

    @rule()
    def snapshot(self) -> None:
        balances = {"USDT": self.cash, "BTC": self.held["BTC-USDT"], "ETH": self.held["ETH-USDT"]}
        self.app.record_exchange_snapshot(
            "paper",
            balances={a: {"total": str(v)} for a, v in balances.items()},
            positions=[],
            open_orders=[],
        )

    @rule()
    def replay(self) -> None:
        result = verify(self.source, self.store, self.scratch, self.projections)
        assert result.difference is None, result.difference

    # --- invariants ----------------------------------------------------------------------
    @invariant()
    def every_change_is_approved(self) -> None:
        for n in self.app.recorder.select_notifications(start=self.audited + 1, limit=100_000):
            self.auditor.check(n.id, str(n.originator_id), n.originator_version, n.topic, state(n))
            self.audited = n.id

    @invariant()
    def nav_is_cash_plus_marked_positions(self) -> None:
        desk = self.app.desk()
        assert {i: desk.positions.get(i, Decimal(0)) for i in INSTRUMENTS} == self.held
        assert desk.cash == self.cash
        assert desk.nav() == self.nav()
        self.projector.run_once()
        [summary] = [r for t, r in self.store.dump(self.portfolio) if t == "portfolio"]
        assert Decimal(str(summary["nav"])) == self.nav()


CommandMachine.TestCase.settings = settings(
    max_examples=6,
    stateful_step_count=30,
    deadline=timedelta(seconds=30),
    suppress_health_check=[HealthCheck.too_slow],
)
TestCommands = CommandMachine.TestCase
