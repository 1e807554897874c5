"""ExchangeAccount: what the venue said we hold, recorded as observations for reconciliation."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from domain.base import AISAggregate

_NS = uuid5(NAMESPACE_URL, "ais:exchange-account")


def exchange_account_id(account_id: str, venue: str) -> UUID:
    return uuid5(_NS, f"{account_id}|{venue}")


class ExchangeAccount(AISAggregate):
    """Observations, not commands: no approval, but every snapshot is kept verbatim."""

    @event("Opened")
    def __init__(self, id: UUID, account_id: str, venue: str) -> None:
        self.account_id = account_id
        self.venue = venue
        self.snapshots = 0
        self.last_taken_at: str | None = None

    @event("SnapshotRecorded")
    def record_snapshot(
        self,
        taken_at: datetime,
        balances: dict[str, Any],
        positions: list[dict[str, Any]],
        open_orders: list[dict[str, Any]],
        baseline: bool = False,  # what later snapshots are judged against (shadow's start)
    ) -> None:
        self.snapshots += 1
        self.last_taken_at = taken_at.isoformat()
