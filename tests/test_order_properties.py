"""Random command sequences never put an Order into an illegal state."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.commands import (
    AcknowledgeOrder,
    CancelOrder,
    Command,
    ExpireOrder,
    RecordFill,
    RejectOrder,
    SubmitOrder,
)
from domain.errors import DomainError
from domain.order import (
    FILLED,
    PARTIALLY_FILLED,
    PENDING_NEW,
    TERMINAL,
    TRANSITIONS,
    Order,
)
from tests.test_approval_properties import NOW, issue, place_orders, verifier

STATES = {PENDING_NEW, "SUBMITTED", "OPEN", PARTIALLY_FILLED} | TERMINAL


def _command(order: Order, kind: str, n: int, quantity: Decimal) -> Command:
    if kind == "submit":
        return SubmitOrder(order_id=order.id, client_order_id=f"c{n}")
    if kind == "ack":
        return AcknowledgeOrder(order_id=order.id, exchange_order_id=f"x{n}")
    if kind == "fill":
        return RecordFill(
            order_id=order.id,
            trade_id=f"t{n % 7}",
            quantity=quantity,
            price=Decimal(100),
            fee=Decimal(0),
            filled_at=NOW,
        )
    cls: Any = {"cancel": CancelOrder, "reject": RejectOrder, "expire": ExpireOrder}[kind]
    return cls(order_id=order.id, reason="test")  # type: ignore[no-any-return]


steps = st.lists(
    st.tuples(
        st.sampled_from(["submit", "ack", "fill", "cancel", "reject", "expire"]),
        st.decimals(min_value=Decimal("0.001"), max_value=Decimal(50), places=3),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(command=place_orders, sequence=steps)
def test_random_sequences_keep_the_order_legal(command: Any, sequence: Any) -> None:
    order = Order.place(command, issue(command), verifier())
    order.collect_events()
    for n, (kind, quantity) in enumerate(sequence):
        before = order.status
        cmd = _command(order, kind, n, quantity)
        try:
            order.execute(cmd, issue(cmd, version=order.version), verifier())
        except DomainError:
            assert order.pending_events == []  # a refusal emits nothing
            assert order.status == before
            continue
        order.collect_events()
        if kind != "fill":
            assert before in TRANSITIONS[cmd.command_type]
        if before in TERMINAL:
            assert order.status == before  # terminal is forever; late fills are flagged
        assert order.status in STATES
        if order.anomalies:  # an over-fill or late fill is kept as a fact and flagged
            continue
        assert order.filled_quantity <= order.quantity
        if order.status == FILLED:
            assert order.filled_quantity == order.quantity
        if order.status == PARTIALLY_FILLED:
            assert 0 < order.filled_quantity < order.quantity
        assert len(order.trade_ids) == len(set(order.trade_ids))
