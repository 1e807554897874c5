"""The application end to end on both stores (parametrised by the store_url fixture)."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import pytest
from eventsourcing.persistence import IntegrityError

from application.errors import NotFound, RiskRejected
from application.trading import TradingApp
from domain.approval import KeyRing
from domain.commands import (
    AcknowledgeOrder,
    CancelOrder,
    EndSession,
    HaltSession,
    PlaceOrder,
    SubmitOrder,
    command_from_dict,
    position_id,
)
from domain.errors import ApprovalError, IllegalTransition, InvalidCommand
from tests.conftest import AppFactory, all_events, kinds, start_session


def place(app: TradingApp, session_id: UUID, **fields: object) -> PlaceOrder:
    values: dict[str, object] = {
        "order_id": app.ids(),
        "session_id": session_id,
        "instrument": "BTC-USDT",
        "side": "BUY",
        "order_type": "LIMIT",
        "quantity": "0.1",
        "limit_price": "50000",
    }
    values.update(fields)
    return PlaceOrder(**values)  # type: ignore[arg-type]


def test_order_lifecycle_saves_approval_and_change_together(app: TradingApp) -> None:
    session_id = start_session(app)
    cmd = place(app, session_id)
    before = len(all_events(app))
    [token] = app.execute(cmd)
    events = all_events(app)[before:]
    assert kinds(events) == [
        "RiskDesk.CommandApproved",
        "Order.Placed",
    ]
    app.execute(SubmitOrder(order_id=cmd.order_id, client_order_id="c1"))
    app.execute(AcknowledgeOrder(order_id=cmd.order_id, exchange_order_id="x1"))
    app.clock.advance(1)  # type: ignore[attr-defined]
    assert app.record_fill(
        cmd.order_id,
        trade_id="t1",
        quantity=Decimal("0.04"),
        price=Decimal("50000"),
        fee=Decimal("2"),
        filled_at=app.clock(),
    )
    assert app.record_fill(
        cmd.order_id,
        trade_id="t2",
        quantity=Decimal("0.06"),
        price=Decimal("50010"),
        fee=Decimal("3"),
        filled_at=app.clock(),
    )
    order = app.order(cmd.order_id)
    assert order.status == "FILLED"
    assert order.filled_quantity == Decimal("0.1")
    assert order.average_price == Decimal("50006")
    position = app.position(position_id("acct", "BTC-USDT"))
    assert position.quantity == Decimal("0.1")
    assert position.lot.fees == Decimal("5")
    assert position.lot.realized_pnl == Decimal("-5")
    assert order.approval_ids[0] == str(token.approval_id)
    desk = app.desk()
    assert desk.positions["BTC-USDT"] == Decimal("0.1")
    assert desk.cash == Decimal("100000") - Decimal("5000.6") - Decimal("5")
    assert desk.open_orders == {}


def test_fill_applies_once_per_trade_id(app: TradingApp) -> None:
    session_id = start_session(app)
    cmd = place(app, session_id)
    app.execute(cmd)
    fill = {
        "trade_id": "t1",
        "quantity": Decimal("0.1"),
        "price": Decimal("50000"),
        "fee": Decimal("0"),
        "filled_at": app.clock(),
    }
    assert app.record_fill(cmd.order_id, **fill)  # type: ignore[arg-type]
    count = len(all_events(app))
    assert not app.record_fill(cmd.order_id, **fill)  # type: ignore[arg-type]
    assert len(all_events(app)) == count


def test_rejection_records_only_the_decision(app: TradingApp) -> None:
    session_id = start_session(app)
    before = len(all_events(app))
    with pytest.raises(RiskRejected) as refused:
        app.execute(place(app, session_id, quantity="3"))
    assert refused.value.rejection.guard == "max_order_quantity"
    events = all_events(app)[before:]
    assert kinds(events) == ["RiskDesk.CommandRejected"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"instrument": "DOGE-USDT"}, "unknown instrument"),
        ({"quantity": "-1"}, "quantity must be positive"),
        ({"quantity": "0"}, "quantity must be positive"),
        ({"quantity": "0.000001"}, "lot size"),
        ({"limit_price": "50000.001"}, "tick size"),
        ({"quantity": "NaN"}, "must be finite"),
        ({"side": "HOLD"}, "side must be one of"),
    ],
)
def test_bad_input_gives_one_clear_error_and_no_event(
    app: TradingApp, fields: dict[str, object], message: str
) -> None:
    session_id = start_session(app)
    before = len(all_events(app))
    with pytest.raises(InvalidCommand, match=message):
        app.execute(place(app, session_id, **fields))
    assert len(all_events(app)) == before


def test_unknown_command_and_unknown_field_are_bad_input() -> None:
    with pytest.raises(InvalidCommand, match="unknown command 'Teleport'"):
        command_from_dict("Teleport", {})
    with pytest.raises(InvalidCommand, match="has no field"):
        command_from_dict("CancelOrder", {"order_id": "x", "reason": "r", "extra": 1})


def test_malformed_key_is_refused() -> None:
    from domain.approval import KeyRingError

    for text in ("nocolon", "k1:short", "bad id:" + "s" * 40, f"k1:{'a' * 40},k1:{'b' * 40}"):
        with pytest.raises(KeyRingError):
            KeyRing.parse(text)


def test_no_key_fails_closed(make_app: AppFactory) -> None:
    app = make_app(keys=KeyRing(()))
    before = len(all_events(app))
    with pytest.raises(ApprovalError, match="ais keys init"):
        start_session(app)
    assert len(all_events(app)) == before


def test_illegal_transition_is_refused_before_approval(app: TradingApp) -> None:
    session_id = start_session(app)
    cmd = place(app, session_id)
    app.execute(cmd)
    before = len(all_events(app))
    with pytest.raises(IllegalTransition, match="needs SUBMITTED"):
        app.execute(AcknowledgeOrder(order_id=cmd.order_id, exchange_order_id="x"))
    with pytest.raises(NotFound):
        app.execute(SubmitOrder(order_id=app.ids(), client_order_id="c"))
    assert len(all_events(app)) == before


def test_token_from_two_step_path_is_single_use(app: TradingApp) -> None:
    session_id = start_session(app)
    cmd = place(app, session_id)
    app.execute(cmd)
    submit = SubmitOrder(order_id=cmd.order_id, client_order_id="c1")
    token = app.approve(submit)
    app.apply(submit, token)
    with pytest.raises(ApprovalError, match="used or stale"):
        app.apply(submit, token)
    assert app.order(cmd.order_id).status == "SUBMITTED"


def test_token_for_one_command_does_not_authorise_another(app: TradingApp) -> None:
    session_id = start_session(app)
    cmd = place(app, session_id)
    app.execute(cmd)
    token = app.approve(SubmitOrder(order_id=cmd.order_id, client_order_id="c1"))
    with pytest.raises(ApprovalError, match="digest"):
        app.apply(SubmitOrder(order_id=cmd.order_id, client_order_id="c2"), token)
    with pytest.raises(ApprovalError, match="expired"):
        app.clock.advance(31)  # type: ignore[attr-defined]
        app.apply(SubmitOrder(order_id=cmd.order_id, client_order_id="c1"), token)


def test_kill_switch_cancels_open_orders_and_allows_only_reducing(app: TradingApp) -> None:
    session_id = start_session(app)
    buy = place(app, session_id)
    app.execute(buy)
    app.record_fill(
        buy.order_id,
        trade_id="t1",
        quantity=Decimal("0.05"),
        price=Decimal("50000"),
        fee=Decimal("0"),
        filled_at=app.clock(),
    )
    app.engage_kill_switch(reason="operator drill", by="alice")
    assert app.order(buy.order_id).status == "CANCELED"
    with pytest.raises(RiskRejected, match="kill_switch"):
        app.execute(place(app, session_id, quantity="0.01"))
    close = place(app, session_id, side="SELL", quantity="0.05", reduce_only=True)
    app.execute(close)
    app.execute(HaltSession(session_id=session_id, reason="halted by operator"))
    with pytest.raises(InvalidCommand, match="operator and a reason"):
        app.reset_kill_switch(reason="", by="alice")
    app.reset_kill_switch(reason="drill over", by="alice")
    assert app.desk().kill_state == "ACTIVE"
    app.execute(EndSession(session_id=session_id, reason="done"))


def test_state_rebuilds_from_the_log(make_app: AppFactory) -> None:
    first = make_app()
    session_id = start_session(first)
    cmd = place(first, session_id)
    first.execute(cmd)
    first.execute(CancelOrder(order_id=cmd.order_id, reason="changed my mind"))
    second = make_app()  # same database, empty cache: everything comes from events
    assert second.order(cmd.order_id).status == "CANCELED"
    assert second.desk().approved_count == first.desk().approved_count
    assert second.desk().open_orders == {}


def test_second_writer_with_stale_view_gets_conflict_not_duplicate(
    make_app: AppFactory,
) -> None:
    a, b = make_app(), make_app()
    session_id = start_session(a)
    cmd = place(a, session_id)
    a.execute(cmd)
    submit = SubmitOrder(order_id=cmd.order_id, client_order_id="c1")
    token = a.approve(submit)
    order_seen_by_b = b.order(cmd.order_id)  # b loads version 1 before a applies
    a.apply(submit, token)
    order_seen_by_b.execute(submit, token, b.verifier)
    with pytest.raises(IntegrityError):
        b.save(order_seen_by_b)
    assert kinds(all_events(a)).count("Order.Submitted") == 1
    with pytest.raises(ApprovalError, match="used or stale"):
        b.apply(submit, token)  # a fresh load sees version 2: the token is spent


def test_event_timestamps_come_from_the_injected_clock(app: TradingApp) -> None:
    """Same data, same clock, same log: no wall-clock time leaks into events."""
    start_session(app)
    stamps = {app.mapper.transcoder.decode(n.state)["timestamp"] for n in all_events(app)}
    assert stamps == {app.clock()}
