"""A venue fill for an order this system never placed: recorded, never applied.

Fills are facts, but one without an Order has no approved intent to attach to. It is
kept as an observation (one aggregate per venue trade id, so recording it twice is a
no-op) and the kill switch is engaged; reconciliation then shows what it did to the
balances.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from domain.base import AISAggregate

_NS = uuid5(NAMESPACE_URL, "ais:unknown-fill")


def unknown_fill_id(account_id: str, venue: str, trade_id: str) -> UUID:
    return uuid5(_NS, f"{account_id}|{venue}|{trade_id}")


class UnknownFill(AISAggregate):
    @event("Recorded")
    def __init__(
        self,
        id: UUID,
        account_id: str,
        venue: str,
        trade_id: str,
        client_order_id: str | None,
        exchange_order_id: str,
        instrument: str,
        side: str,
        quantity: Decimal,
        price: Decimal,
        fee: Decimal,
        filled_at: datetime,
        reason: str,
    ) -> None:
        self.account_id = account_id
        self.venue = venue
        self.trade_id = trade_id
        self.client_order_id = client_order_id
        self.exchange_order_id = exchange_order_id
        self.instrument = instrument
        self.side = side
        self.quantity = quantity
        self.price = price
        self.fee = fee
        self.filled_at = filled_at
        self.reason = reason
