"""A Position always equals the fold of its fills, and its P&L adds up independently."""

from __future__ import annotations

import functools
from decimal import Decimal
from typing import Any
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.commands import ApplyFill
from domain.position import Lot, Position, apply_fill
from domain.values import Side
from tests.test_approval_properties import NOW, issue, verifier

fills = st.lists(
    st.tuples(
        st.sampled_from(Side),
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10), places=2),
        st.decimals(min_value=Decimal(1), max_value=Decimal(1000), places=2),
        st.decimals(min_value=Decimal(0), max_value=Decimal(5), places=2),
    ),
    min_size=1,
    max_size=30,
)


def _fill(n: int, side: Side, qty: Decimal, price: Decimal, fee: Decimal) -> ApplyFill:
    return ApplyFill(
        account_id="acct",
        instrument="BTC-USDT",
        side=side,
        order_id=UUID("00000000-0000-4000-8000-000000000001"),
        trade_id=f"t{n}",
        quantity=qty,
        price=price,
        fee=fee,
        filled_at=NOW,
    )


@settings(max_examples=150, deadline=None)
@given(sequence=fills, mark=st.decimals(min_value=Decimal(1), max_value=Decimal(1000), places=2))
def test_position_equals_fold_of_fills_and_pnl_identity_holds(sequence: Any, mark: Decimal) -> None:
    position: Position | None = None
    for n, (side, qty, price, fee) in enumerate(sequence):
        cmd = _fill(n, side, qty, price, fee)
        if position is None:
            position = Position.open(cmd, issue(cmd), verifier())
        else:
            position.apply(cmd, issue(cmd, version=position.version), verifier())
    assert position is not None
    folded = functools.reduce(lambda lot, f: apply_fill(lot, *f), sequence, Lot())
    assert position.lot == folded

    # Replaying the stored events rebuilds the same state without any token checks.
    replayed: Any = None
    for event in position.collect_events():
        replayed = event.mutate(replayed)
    assert replayed.lot == position.lot

    # Independent check: realized + unrealized equals the cash flows plus holdings at mark.
    lot = position.lot
    cash = sum((-s.sign * q * p - f for s, q, p, f in sequence), Decimal(0))
    quantity = sum((s.sign * q for s, q, _, _ in sequence), Decimal(0))
    assert lot.quantity == quantity
    assert lot.fees == sum((f for *_, f in sequence), Decimal(0))
    unrealized = lot.quantity * (mark - lot.average_entry)
    assert abs((lot.realized_pnl + unrealized) - (cash + quantity * mark)) < Decimal("1e-12")
    if lot.quantity == 0:
        assert lot.average_entry == 0
    else:
        assert lot.average_entry > 0
