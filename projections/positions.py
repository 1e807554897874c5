"""Positions read model: the same average-cost fold as the aggregate, from its events."""

from __future__ import annotations

from domain.position import Lot, apply_fill
from domain.values import Side
from projections.spec import LoggedEvent, Rows, TableSpec, dec

POSITIONS = TableSpec(
    "positions",
    (
        "position_id",
        "account_id",
        "instrument",
        "quantity",
        "average_entry",
        "realized_pnl",
        "fees",
        "trades",
        "updated_at",
    ),
    ("position_id",),
    ("trades",),
)


class PositionsProjection:
    name = "positions"
    version = 1
    handling_cost = 0.85  # per event, for splitting a rebuild (projections.lanes)
    tables: tuple[TableSpec, ...] = (POSITIONS,)

    def wants(self, kind: str) -> bool:
        return kind.startswith("Position.")

    def handle(self, event: LoggedEvent, rows: Rows) -> None:
        if not self.wants(event.kind):
            return
        s = event.state
        at = event.at
        if event.kind == "Position.Opened":
            rows.put(
                "positions",
                {
                    "position_id": event.originator_id,
                    "account_id": s["account_id"],
                    "instrument": s["instrument"],
                    "quantity": "0",
                    "average_entry": "0",
                    "realized_pnl": "0",
                    "fees": "0",
                    "trades": 0,
                    "updated_at": at,
                },
            )
        elif event.kind == "Position.FillApplied":
            row = rows.get("positions", (event.originator_id,))
            if row is None:
                raise LookupError(f"fill at {event.position} for unknown position")
            lot = apply_fill(
                Lot(
                    dec(row["quantity"]),
                    dec(row["average_entry"]),
                    dec(row["realized_pnl"]),
                    dec(row["fees"]),
                ),
                Side(s["side"]),
                dec(s["quantity"]),
                dec(s["price"]),
                dec(s["fee"]),
            )
            rows.put(
                "positions",
                {
                    **row,
                    "quantity": str(lot.quantity),
                    "average_entry": str(lot.average_entry),
                    "realized_pnl": str(lot.realized_pnl),
                    "fees": str(lot.fees),
                    "trades": int(row["trades"]) + 1,
                    "updated_at": at,
                },
            )
