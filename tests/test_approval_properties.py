"""Property tests: a token approves exactly one command, once, in time, under a known key."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.approval import ApprovalToken, KeyRing, Verifier, sign
from domain.commands import PlaceOrder, SubmitOrder
from domain.errors import ApprovalError
from domain.order import Order
from domain.values import OrderType, Side

K1 = KeyRing.parse("k1:" + "1" * 40)
K2 = KeyRing.parse("k2:" + "2" * 40)
NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)

place_orders = st.builds(
    PlaceOrder,
    order_id=st.uuids(),
    session_id=st.uuids(),
    instrument=st.sampled_from(["BTC-USDT", "ETH-USDT"]),
    side=st.sampled_from(Side),
    order_type=st.just(OrderType.LIMIT),
    quantity=st.decimals(min_value=Decimal("0.001"), max_value=Decimal(100), places=3),
    limit_price=st.decimals(min_value=Decimal(1), max_value=Decimal(100000), places=2),
    reduce_only=st.booleans(),
)


def issue(
    command: Any, keys: KeyRing = K1, version: int | None = None, ttl: int = 30
) -> ApprovalToken:
    return sign(
        keys,
        approval_id=uuid4(),
        command=command,
        target_version=version,
        issued_at=NOW,
        expires_at=NOW + timedelta(seconds=ttl),
        riskdesk_version=7,
    )


def verifier(keys: KeyRing = K1, at: datetime = NOW) -> Verifier:
    return Verifier(keys, lambda: at)


def _other(value: Any) -> Any:
    """A value of the same kind that differs from the given one."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, UUID):
        return uuid4()
    if isinstance(value, int):
        return value + 1
    if isinstance(value, datetime):
        return value + timedelta(microseconds=1)
    if isinstance(value, str):
        return value[:-1] + ("0" if value[-1:] != "0" else "1") if value else "x"
    if value is None:
        return 0
    raise AssertionError(type(value))


TOKEN_FIELDS = [f.name for f in dataclasses.fields(ApprovalToken)]


@settings(max_examples=60, deadline=None)
@given(command=place_orders, field=st.sampled_from(TOKEN_FIELDS))
def test_changing_any_token_field_rejects_and_creates_nothing(
    command: PlaceOrder, field: str
) -> None:
    token = issue(command)
    tampered = dataclasses.replace(token, **{field: _other(getattr(token, field))})
    with pytest.raises(ApprovalError):
        Order.place(command, tampered, verifier())
    assert Order.place(command, token, verifier()).version == 1


COMMAND_CHANGES: dict[str, Any] = {
    "order_id": lambda v: uuid4(),
    "session_id": lambda v: uuid4(),
    "instrument": lambda v: "ETH-USDT" if v == "BTC-USDT" else "BTC-USDT",
    "side": lambda v: Side.SELL if v is Side.BUY else Side.BUY,
    "quantity": lambda v: v + Decimal("0.001"),
    "limit_price": lambda v: v + Decimal("0.01"),
    "reduce_only": lambda v: not v,
    "order_type": lambda v: OrderType.MARKET,
}


@settings(max_examples=60, deadline=None)
@given(command=place_orders, field=st.sampled_from(sorted(COMMAND_CHANGES)))
def test_changing_any_command_field_rejects(command: PlaceOrder, field: str) -> None:
    token = issue(command)
    changes = {field: COMMAND_CHANGES[field](getattr(command, field))}
    if field == "order_type":
        changes["limit_price"] = None
    changed = dataclasses.replace(command, **changes)
    with pytest.raises(ApprovalError):
        Order.place(changed, token, verifier())


def _placed(command: PlaceOrder) -> Order:
    order = Order.place(command, issue(command), verifier())
    order.collect_events()
    return order


# Printable text: commands refuse control characters (see domain.values.check_text).
client_ids = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=20)


@settings(max_examples=40, deadline=None)
@given(command=place_orders, client_id=client_ids.filter(str.strip))
def test_a_token_works_once_and_a_failed_command_emits_nothing(
    command: PlaceOrder, client_id: str
) -> None:
    order = _placed(command)
    submit = SubmitOrder(order_id=command.order_id, client_order_id=client_id)
    token = issue(submit, version=order.version)
    order.execute(submit, token, verifier())
    assert len(order.collect_events()) == 1
    with pytest.raises(ApprovalError, match="used or stale"):
        order.execute(submit, token, verifier())
    assert order.pending_events == []


@given(command=place_orders, late=st.integers(min_value=0, max_value=10_000))
def test_expired_token_is_rejected(command: PlaceOrder, late: int) -> None:
    token = issue(command, ttl=30)
    with pytest.raises(ApprovalError, match="expired"):
        Order.place(command, token, verifier(at=NOW + timedelta(seconds=30 + late)))


@given(command=place_orders)
def test_unknown_key_and_missing_key_are_rejected(command: PlaceOrder) -> None:
    token = issue(command, keys=K2)
    with pytest.raises(ApprovalError, match="unknown HMAC key id 'k2'"):
        Order.place(command, token, verifier(K1))
    with pytest.raises(ApprovalError, match="no HMAC key"):
        Order.place(command, token, verifier(KeyRing(())))
    with pytest.raises(ApprovalError, match="no HMAC key"):
        issue(command, keys=KeyRing(()))


@given(command=place_orders)
def test_rotation_old_tokens_verify_while_their_key_is_in_the_ring(command: PlaceOrder) -> None:
    old = issue(command, keys=K1)
    rotated = KeyRing(K2.keys + K1.keys)  # k2 now signs, k1 still verifies
    assert rotated.active_key_id == "k2"
    assert issue(command, keys=rotated).key_id == "k2"
    Order.place(command, old, verifier(rotated))
    with pytest.raises(ApprovalError, match="unknown HMAC key id 'k1'"):
        Order.place(command, old, verifier(K2))  # k1 retired
