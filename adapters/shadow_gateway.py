"""Shadow trading: the real account is read, orders go to the paper venue.

Orders, cancels, lookups and fills are the paper venue's (the router must never see the
real account's fills as its own); `snapshot()` is the real venue's, so reconciliation and
the starting balances reflect the real account.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from adapters.paper_exchange import PaperExchange
from application.ports import (
    AccountSnapshot,
    ExchangeFill,
    ExchangeGateway,
    ExchangeOrder,
    OrderRequest,
)


def snapshot_balances(snapshot: AccountSnapshot) -> dict[str, Decimal]:
    """`{asset: {"total": "1.5"}}` → `{asset: Decimal("1.5")}` (unreadable ones skipped)."""
    out: dict[str, Decimal] = {}
    for asset, entry in snapshot.balances.items():
        total = entry.get("total") if isinstance(entry, dict) else entry
        try:
            amount = Decimal(str(total))
        except (InvalidOperation, ValueError):
            continue
        if amount.is_finite():
            out[asset] = amount
    return out


class ShadowGateway:
    def __init__(self, paper: PaperExchange, real: ExchangeGateway) -> None:
        self.paper = paper
        self.real = real
        self.venue = paper.venue

    def submit(self, request: OrderRequest) -> ExchangeOrder:
        return self.paper.submit(request)

    def cancel(self, client_order_id: str, instrument: str) -> ExchangeOrder | None:
        return self.paper.cancel(client_order_id, instrument)

    def lookup(self, client_order_id: str, instrument: str) -> ExchangeOrder | None:
        return self.paper.lookup(client_order_id, instrument)

    def fills(self, since: datetime | None) -> list[ExchangeFill]:
        return self.paper.fills(since)

    def snapshot(self) -> AccountSnapshot:
        return self.real.snapshot()
