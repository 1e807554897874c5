"""Every RiskDesk guard, tripped once and passed once, at the domain level (no database).

Each rejection must name its guard, the value it observed and the limit it applied, both
in the returned `Rejection` and in the `CommandRejected` event the desk records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest

from adapters.settings import PROJECT_ROOT, load_limits
from domain.approval import ApprovalToken, KeyRing
from domain.commands import (
    ApplyFill,
    CancelOrder,
    Command,
    EndSession,
    HaltSession,
    PlaceOrder,
    RecordFill,
    ResumeSession,
    StartSession,
    SubmitOrder,
)
from domain.guards import Rejection
from domain.limits import RiskLimits
from domain.risk_desk import RiskDesk
from domain.values import Mode, OrderType, Side

KEYS = KeyRing.parse("k1:" + "s" * 40)
T0 = datetime(2024, 1, 2, 9, 0, tzinfo=UTC)
BTC, ETH = "BTC-USDT", "ETH-USDT"
BASE_LIMITS = load_limits(PROJECT_ROOT / "config" / "risk.toml")


def make_limits(**overrides: Any) -> RiskLimits:
    """config/risk.toml with the fields a test depends on stated explicitly."""
    return replace(BASE_LIMITS, **overrides)


class Trader:
    """A desk funded with 100 000 by one active session, BTC at 50 000 and ETH at 3 000.

    Time only moves when the test calls `tick`.
    """

    def __init__(self, limits: RiskLimits | None = None) -> None:
        self.now = T0
        self.desk = RiskDesk(
            id=uuid4(),
            account_id="acct",
            limits=(limits or make_limits()).to_dict(),
            key_id="k1",
        )
        self.session_id = uuid4()
        self.accept(self.start_session(self.session_id))
        self.mark(BTC, "50000")
        self.mark(ETH, "3000")

    # --- driving the desk --------------------------------------------------------------
    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def mark(self, instrument: str, price: str) -> None:
        self.desk.observe_mark(instrument, Decimal(price), at=self.now)

    def approve(
        self, command: Command, target_version: int | None = None
    ) -> ApprovalToken | Rejection:
        return self.desk.approve(
            command,
            target_version=target_version,
            approval_id=uuid4(),
            now=self.now,
            keys=KEYS,
        )

    @staticmethod
    def start_session(session_id: UUID) -> StartSession:
        return StartSession(
            session_id=session_id,
            mode=Mode.PAPER,
            starting_capital=Decimal("100000"),
            config_digest="x",
        )

    def order(
        self,
        side: str,
        quantity: str,
        *,
        instrument: str = BTC,
        limit_price: str | None = None,
        reduce_only: bool = False,
        session_id: UUID | None = None,
    ) -> PlaceOrder:
        return PlaceOrder(
            order_id=uuid4(),
            session_id=session_id or self.session_id,
            instrument=instrument,
            side=Side(side),
            order_type=OrderType.MARKET if limit_price is None else OrderType.LIMIT,
            quantity=Decimal(quantity),
            limit_price=None if limit_price is None else Decimal(limit_price),
            reduce_only=reduce_only,
        )

    def hold(
        self, side: str, quantity: str, price: str, *, instrument: str = BTC, fee: str = "0"
    ) -> None:
        """Put a fill on the desk's own book (cash and position) via an approved ApplyFill."""
        self.accept(
            ApplyFill(
                account_id="acct",
                instrument=instrument,
                side=Side(side),
                order_id=uuid4(),
                trade_id=f"t-{uuid4()}",
                quantity=Decimal(quantity),
                price=Decimal(price),
                fee=Decimal(fee),
                filled_at=self.now,
            )
        )

    def fill(self, order_id: UUID, quantity: str, price: str) -> RecordFill:
        return RecordFill(
            order_id=order_id,
            trade_id=f"t-{uuid4()}",
            quantity=Decimal(quantity),
            price=Decimal(price),
            fee=Decimal("0"),
            filled_at=self.now,
        )

    # --- assertions --------------------------------------------------------------------
    def events(self, name: str) -> list[dict[str, Any]]:
        """Attributes of the pending events whose class name ends with `name`."""
        return [vars(e) for e in self.desk.pending_events if type(e).__name__.endswith(name)]

    def accept(self, command: Command) -> ApprovalToken:
        """Approve and check the token and the CommandApproved event match the command."""
        result = self.approve(command)
        assert isinstance(result, ApprovalToken), f"expected approval, got {result}"
        assert result.command_type == command.command_type
        assert result.command_digest == command.digest()
        assert self.events("CommandApproved")[-1]["approval"] == result.to_dict()
        return result

    def refuse(self, command: Command, guard: str, observed: str, limit: str) -> Rejection:
        """Approve, expect the named guard to say no, and find the same facts in the event."""
        approved_before = self.desk.approved_count
        result = self.approve(command)
        assert isinstance(result, Rejection), f"expected {guard} to reject, got {result}"
        assert (result.guard, result.observed, result.limit) == (guard, observed, limit)
        event = self.events("CommandRejected")[-1]
        assert (event["guard"], event["observed"], event["limit"], event["reason"]) == (
            guard,
            observed,
            limit,
            result.reason,
        )
        assert event["command_digest"] == command.digest()
        assert self.desk.approved_count == approved_before
        return result


# --- order guards, one trip and one pass each ------------------------------------------


def test_kill_switch_trips_when_halted() -> None:
    """A HALTED desk refuses anything that is not a reduce-only, reducing order."""
    t = Trader()
    t.desk.engage_kill_switch(reason="operator", by="ops", at=t.now)
    t.refuse(t.order("BUY", "0.01"), "kill_switch", "HALTED", "reduce-only orders")


def test_kill_switch_passes_when_active() -> None:
    """An ACTIVE desk lets an ordinary increasing order through."""
    t = Trader()
    assert t.desk.kill_state == "ACTIVE"
    t.accept(t.order("BUY", "0.01"))


@pytest.mark.parametrize(
    ("session", "observed"),
    [("halted", "HALTED"), ("ended", "ENDED"), ("unknown", "None")],
)
def test_session_active_trips(session: str, observed: str) -> None:
    """Orders need a session the desk knows to be ACTIVE."""
    t = Trader()
    session_id = t.session_id if session != "unknown" else uuid4()
    if session == "halted":
        t.accept(HaltSession(session_id=t.session_id, reason="pause"))
    elif session == "ended":
        t.accept(EndSession(session_id=t.session_id, reason="done"))
    t.refuse(t.order("BUY", "0.01", session_id=session_id), "session_active", observed, "ACTIVE")


def test_session_active_passes_after_resume() -> None:
    """A halted session that is resumed can trade again."""
    t = Trader()
    t.accept(HaltSession(session_id=t.session_id, reason="pause"))
    t.accept(ResumeSession(session_id=t.session_id, reason="back"))
    t.accept(t.order("BUY", "0.01"))


def test_instrument_allowed_trips_outside_the_mandate() -> None:
    """An instrument absent from the mandate is refused, naming what is allowed."""
    t = Trader()
    t.mark("SOL-USDT", "100")
    t.refuse(
        t.order("BUY", "1", instrument="SOL-USDT"),
        "instrument_allowed",
        "SOL-USDT",
        "BTC-USDT,ETH-USDT",
    )


def test_instrument_allowed_passes_inside_the_mandate() -> None:
    t = Trader()
    t.accept(t.order("BUY", "1", instrument=ETH))


@pytest.mark.parametrize(("quantity", "rejected"), [("0.1", False), ("0.11", True)])
def test_max_order_quantity(quantity: str, rejected: bool) -> None:
    """The mandate's per-instrument size is inclusive: at the limit passes, above trips."""
    t = Trader(make_limits(mandate={BTC: Decimal("0.1"), ETH: Decimal("40")}))
    order = t.order("BUY", quantity)
    if rejected:
        t.refuse(order, "max_order_quantity", quantity, "0.1")
    else:
        t.accept(order)


def test_stale_mark_trips_without_any_mark() -> None:
    """No price at all fails closed."""
    t = Trader(make_limits(mandate={**BASE_LIMITS.mandate, "SOL-USDT": Decimal("10")}))
    t.refuse(t.order("BUY", "1", instrument="SOL-USDT"), "stale_mark", "no mark", "300")


@pytest.mark.parametrize(("age", "rejected"), [(300, False), (301, True)])
def test_stale_mark_age(age: int, rejected: bool) -> None:
    """A mark exactly max_mark_age_seconds old is still usable; one second more is not."""
    t = Trader(make_limits(max_mark_age_seconds=300))
    t.tick(age)
    order = t.order("BUY", "0.01")
    if rejected:
        t.refuse(order, "stale_mark", str(age), "300")
    else:
        t.accept(order)


def test_stale_mark_reports_the_exact_age() -> None:
    t = Trader(make_limits(max_mark_age_seconds=300))
    t.tick(1_234_567)
    t.refuse(t.order("BUY", "0.01"), "stale_mark", "1234567", "300")


@pytest.mark.parametrize(
    ("limit_price", "observed"),
    [("52500", None), ("47500", None), ("53000", "0.060000"), ("46500", "0.070000")],
)
def test_price_collar(limit_price: str, observed: str | None) -> None:
    """|limit - mark| / mark may be up to the collar (5 %) on either side, not beyond."""
    t = Trader(make_limits(price_collar=Decimal("0.05")))
    order = t.order("BUY", "0.01", limit_price=limit_price)
    if observed is None:
        t.accept(order)
    else:
        t.refuse(order, "price_collar", observed, "0.05")


@pytest.mark.parametrize(
    ("quantity", "limit_price", "observed"),
    [
        ("0.5", None, None),  # 0.5 x mark 50 000 = 25 000: at the limit
        ("0.51", None, "25500.00"),  # valued at the mark
        ("0.5", "50100", "25050.0"),  # valued at the limit price when there is one
    ],
)
def test_max_order_notional(quantity: str, limit_price: str | None, observed: str | None) -> None:
    """quantity x (limit price, else mark) may not exceed max_order_notional."""
    t = Trader(make_limits(max_order_notional=Decimal("25000"), max_position_weight=Decimal("1")))
    order = t.order("BUY", quantity, limit_price=limit_price)
    if observed is None:
        t.accept(order)
    else:
        t.refuse(order, "max_order_notional", observed, "25000")


@pytest.mark.parametrize(("gap", "rejected"), [(9, True), (10, False)])
def test_duplicate_order(gap: int, rejected: bool) -> None:
    """The same economic order (new id) inside the window is a duplicate; after it, not."""
    t = Trader(make_limits(duplicate_window_seconds=10))
    t.accept(t.order("BUY", "0.01"))
    t.tick(gap)
    again = t.order("BUY", "0.01")
    if rejected:
        t.refuse(again, "duplicate_order", "same order within window", "10s")
    else:
        t.accept(again)


@pytest.mark.parametrize(("at", "rejected"), [(3, True), (60, False)])
def test_order_rate(at: int, rejected: bool) -> None:
    """At most order_rate_limit orders per window; the oldest leaves the window at 60 s."""
    t = Trader(make_limits(order_rate_limit=3, order_rate_window_seconds=60))
    for i, quantity in enumerate(("0.01", "0.02", "0.03")):
        t.now = T0 + timedelta(seconds=i)
        t.accept(t.order("BUY", quantity))
    t.now = T0 + timedelta(seconds=at)
    fourth = t.order("BUY", "0.04")
    if rejected:
        t.refuse(fourth, "order_rate", "4", "3/60s")
    else:
        t.accept(fourth)


@pytest.mark.parametrize(("fee", "observed"), [("3000", None), ("4000", "0.040000")])
def test_daily_loss(fee: str, observed: str | None) -> None:
    """A day's loss above the limit refuses increasing orders and engages the kill switch.

    The loss comes from a fee on a fill, so observe_mark has not noticed it yet.
    """
    t = Trader(make_limits(daily_loss=Decimal("0.03")))
    t.hold("BUY", "0.1", "50000", fee=fee)  # NAV 100 000 - fee
    order = t.order("BUY", "0.01")
    if observed is None:
        t.accept(order)
        assert t.desk.kill_state == "ACTIVE"
        return
    t.refuse(order, "daily_loss", observed, "0.03")
    assert t.desk.kill_state == "HALTED"
    assert t.events("KillSwitchEngaged")[-1]["reason"].startswith("daily_loss:")


@pytest.mark.parametrize(("fee", "observed"), [("5000", None), ("6000", "0.060000")])
def test_max_drawdown(fee: str, observed: str | None) -> None:
    """1 - NAV / high-water mark above max_drawdown refuses increasing orders."""
    t = Trader(make_limits(max_drawdown=Decimal("0.05"), daily_loss=Decimal("0.5")))
    t.hold("BUY", "0.1", "50000", fee=fee)
    order = t.order("BUY", "0.01")
    if observed is None:
        t.accept(order)
    else:
        t.refuse(order, "max_drawdown", observed, "0.05")
        assert t.desk.kill_state == "ACTIVE"  # the guard refuses; it does not halt


@pytest.mark.parametrize(("quantity", "observed"), [("0.2", None), ("0.25", "0.125000")])
def test_max_position_weight(quantity: str, observed: str | None) -> None:
    """|worst-case position| x mark / NAV: 0.2 BTC is 10 % of 100 000, 0.25 BTC is 12.5 %."""
    t = Trader(make_limits(max_position_weight=Decimal("0.10")))
    order = t.order("BUY", quantity)
    if observed is None:
        t.accept(order)
    else:
        t.refuse(order, "max_position_weight", observed, "0.10")


@pytest.mark.parametrize(("quantity", "observed"), [("0.2", None), ("0.4", "0.350000")])
def test_max_gross_leverage(quantity: str, observed: str | None) -> None:
    """Gross exposure sums every instrument: 5 ETH held (15 000) plus the BTC order."""
    t = Trader(
        make_limits(
            max_gross_leverage=Decimal("0.3"),
            max_position_weight=Decimal("1"),
            max_net_exposure=Decimal("1"),
        )
    )
    t.hold("BUY", "5", "3000", instrument=ETH)
    order = t.order("BUY", quantity)
    if observed is None:
        t.accept(order)  # (15 000 + 10 000) / 100 000 = 0.25
    else:
        t.refuse(order, "max_gross_leverage", observed, "0.3")


@pytest.mark.parametrize(("hedged", "observed"), [(True, None), (False, "0.250000")])
def test_max_net_exposure(hedged: bool, observed: str | None) -> None:
    """A 25 000 BTC buy is 25 % net alone, but only 10 % against a 15 000 ETH short."""
    t = Trader(
        make_limits(
            max_net_exposure=Decimal("0.2"),
            max_gross_leverage=Decimal("1.5"),
            max_position_weight=Decimal("1"),
        )
    )
    if hedged:
        t.hold("SELL", "5", "3000", instrument=ETH)
    order = t.order("BUY", "0.5")
    if observed is None:
        t.accept(order)
    else:
        t.refuse(order, "max_net_exposure", observed, "0.2")


def test_reducing_order_skips_portfolio_guards() -> None:
    """A position already over its weight limit can still be reduced."""
    t = Trader(make_limits(max_position_weight=Decimal("0.10")))
    t.hold("BUY", "0.5", "50000")  # 25 % of NAV
    t.refuse(t.order("BUY", "0.01"), "max_position_weight", "0.255000", "0.10")
    t.accept(t.order("SELL", "0.1"))


def test_open_orders_count_toward_exposure_limits() -> None:
    """Two buys of 7.5 % and 5 % pass alone but not together; cancelling frees the room."""
    t = Trader(make_limits(max_position_weight=Decimal("0.10")))
    first = t.order("BUY", "0.15")
    second = t.order("BUY", "0.1")
    t.accept(first)
    t.refuse(second, "max_position_weight", "0.125000", "0.10")
    t.accept(CancelOrder(order_id=first.order_id, reason="changed my mind"))
    t.accept(second)


def test_open_sell_orders_count_toward_net_exposure() -> None:
    """Open orders count on the short side too: two sells that together go too short."""
    t = Trader(make_limits(max_net_exposure=Decimal("0.2"), max_position_weight=Decimal("1")))
    t.accept(t.order("SELL", "0.3"))
    t.refuse(t.order("SELL", "0.2"), "max_net_exposure", "0.250000", "0.2")


# --- order_known and SubmitOrder -------------------------------------------------------


def test_order_known_trips_for_an_order_never_approved() -> None:
    t = Trader()
    order_id = uuid4()
    t.refuse(
        SubmitOrder(order_id=order_id, client_order_id="c-1"),
        "order_known",
        str(order_id),
        "approved orders",
    )


def test_order_known_passes_for_an_approved_order() -> None:
    t = Trader()
    order = t.order("BUY", "0.01")
    t.accept(order)
    t.accept(SubmitOrder(order_id=order.order_id, client_order_id="c-1"))


def test_submit_of_an_increasing_order_is_held_back_when_halted() -> None:
    """An order approved before the kill switch may not reach the exchange after it."""
    t = Trader()
    order = t.order("BUY", "0.01")
    t.accept(order)
    t.desk.engage_kill_switch(reason="operator", by="ops", at=t.now)
    t.refuse(
        SubmitOrder(order_id=order.order_id, client_order_id="c-1"),
        "kill_switch",
        "HALTED",
        "ACTIVE",
    )


# --- session commands ------------------------------------------------------------------


def test_start_session_trips_session_active_while_another_runs() -> None:
    t = Trader()
    t.refuse(t.start_session(uuid4()), "session_active", str(t.session_id), "one active session")


def test_start_session_passes_once_the_other_has_ended() -> None:
    t = Trader()
    t.accept(EndSession(session_id=t.session_id, reason="done"))
    t.accept(t.start_session(uuid4()))


def test_resume_session_trips_session_active_while_another_runs() -> None:
    t = Trader()
    t.accept(HaltSession(session_id=t.session_id, reason="pause"))
    other = uuid4()
    t.accept(t.start_session(other))
    t.refuse(
        ResumeSession(session_id=t.session_id, reason="back"),
        "session_active",
        str(other),
        "one active session",
    )


@pytest.mark.parametrize("kind", ["StartSession", "ResumeSession"])
def test_session_start_and_resume_trip_kill_switch_when_halted(kind: str) -> None:
    """No trading can be (re)started while the kill switch is engaged."""
    t = Trader()
    t.accept(HaltSession(session_id=t.session_id, reason="pause"))
    t.desk.engage_kill_switch(reason="operator", by="ops", at=t.now)
    command: Command = (
        t.start_session(uuid4())
        if kind == "StartSession"
        else ResumeSession(session_id=t.session_id, reason="back")
    )
    t.refuse(command, "kill_switch", "HALTED", "ACTIVE")


# --- REDUCING and HALTED states --------------------------------------------------------


def _enter_reducing_directly(t: Trader) -> None:
    t.desk._reducing(reason="test", at=t.now)


def _enter_reducing_by_drawdown(t: Trader) -> None:
    t.mark(BTC, "44000")  # NAV 94 000: 6 % below the high-water mark
    assert t.events("ReducingEntered")


@pytest.mark.parametrize(
    "enter",
    [_enter_reducing_directly, _enter_reducing_by_drawdown],
    ids=["direct", "drawdown"],
)
def test_reducing_allows_reducing_and_refuses_increasing(enter: Callable[[Trader], None]) -> None:
    """REDUCING: selling down a long is fine, buying more is not."""
    t = Trader(
        make_limits(
            max_drawdown=Decimal("0.05"),
            daily_loss=Decimal("0.5"),
            max_position_weight=Decimal("1"),
        )
    )
    t.hold("BUY", "1", "50000")
    enter(t)
    assert t.desk.kill_state == "REDUCING"
    t.refuse(t.order("BUY", "0.01"), "kill_switch", "REDUCING", "risk-reducing orders")
    t.accept(t.order("SELL", "0.4"))


@pytest.mark.parametrize(
    ("side", "reduce_only", "allowed"),
    [
        ("SELL", True, True),  # reduce-only and reducing
        ("SELL", False, False),  # reducing, but not flagged reduce-only
        ("BUY", True, False),  # flagged reduce-only, but would increase
    ],
)
def test_halted_allows_only_reduce_only_reducing_orders(
    side: str, reduce_only: bool, allowed: bool
) -> None:
    t = Trader(make_limits(max_position_weight=Decimal("1")))
    t.hold("BUY", "0.4", "50000")
    t.desk.engage_kill_switch(reason="operator", by="ops", at=t.now)
    order = t.order(side, "0.2", reduce_only=reduce_only)
    if allowed:
        t.accept(order)
    else:
        t.refuse(order, "kill_switch", "HALTED", "reduce-only orders")


@pytest.mark.parametrize(
    "make",
    [
        lambda t, order_id: CancelOrder(order_id=order_id, reason="kill switch"),
        lambda t, order_id: t.fill(order_id, "0.01", "50000"),
        lambda t, order_id: HaltSession(session_id=t.session_id, reason="kill switch"),
    ],
    ids=["CancelOrder", "RecordFill", "HaltSession"],
)
def test_halted_still_approves_cleanup(make: Callable[[Trader, UUID], Command]) -> None:
    """Winding down (cancel, book fills that happened, halt the session) stays possible."""
    t = Trader()
    order = t.order("BUY", "0.02")
    t.accept(order)
    t.desk.engage_kill_switch(reason="operator", by="ops", at=t.now)
    t.accept(make(t, order.order_id))
    assert t.desk.kill_state == "HALTED"


# --- fill anomalies --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "price", "anomaly"),
    [
        ("0.02", "50000", None),  # the whole order, at the mark
        ("0.01", "54000", None),  # 8 %: within 2 x 5 % collar
        ("0.03", "50000", "> open"),  # more than is open
        ("0.01", "56000", "far from"),  # 12 %: beyond 2 x collar
    ],
)
def test_fill_anomaly_is_approved_but_engages_the_kill_switch(
    quantity: str, price: str, anomaly: str | None
) -> None:
    """A fill happened, so it is booked; an implausible one halts trading."""
    t = Trader(make_limits(price_collar=Decimal("0.05")))
    order = t.order("BUY", "0.02")
    t.accept(order)
    t.accept(t.fill(order.order_id, quantity, price))
    if anomaly is None:
        assert t.desk.kill_state == "ACTIVE"
        assert not t.events("KillSwitchEngaged")
    else:
        assert t.desk.kill_state == "HALTED"
        reason = t.events("KillSwitchEngaged")[-1]["reason"]
        assert reason.startswith("fill anomaly:") and anomaly in reason


def test_fill_for_an_order_with_nothing_open_engages_the_kill_switch() -> None:
    t = Trader()
    t.accept(t.fill(uuid4(), "0.01", "50000"))
    assert t.desk.kill_state == "HALTED"
    assert "nothing open" in t.events("KillSwitchEngaged")[-1]["reason"]


# --- marks changing the desk's state ---------------------------------------------------


@pytest.mark.parametrize(
    ("price", "state", "event"),
    [
        ("47000", "ACTIVE", None),  # 3 % daily loss: at the limit
        ("46000", "HALTED", "KillSwitchEngaged"),  # 4 % daily loss
    ],
)
def test_mark_crossing_daily_loss_engages_kill_switch(
    price: str, state: str, event: str | None
) -> None:
    t = Trader(make_limits(daily_loss=Decimal("0.03"), max_drawdown=Decimal("0.05")))
    t.hold("BUY", "1", "50000")
    t.mark(BTC, price)
    assert t.desk.kill_state == state
    if event is not None:
        assert t.events(event)[-1]["reason"].startswith("daily loss 0.040000")


@pytest.mark.parametrize(
    ("price", "state"),
    [
        ("49750", "ACTIVE"),  # NAV 99 750: exactly 5 % below the 105 000 high-water mark
        ("49700", "REDUCING"),  # NAV 99 700: 5.05 % below it
    ],
)
def test_mark_crossing_max_drawdown_enters_reducing(price: str, state: str) -> None:
    """After a rise to a 105 000 high-water mark, a fall of more than 5 % means REDUCING."""
    t = Trader(make_limits(max_drawdown=Decimal("0.05"), daily_loss=Decimal("0.5")))
    t.hold("BUY", "1", "50000")
    t.mark(BTC, "55000")
    assert t.desk.high_water_mark == Decimal("105000")
    t.mark(BTC, price)
    assert t.desk.kill_state == state
    assert bool(t.events("ReducingEntered")) == (state == "REDUCING")
