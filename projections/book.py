"""Cash, holdings and marks folded from the log, shared by portfolio and exposure.

Computed from the target aggregates' events (sessions, position fills) and the desk's
observed marks, independently of the RiskDesk's own book, so the two can cross-check.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from projections.spec import LoggedEvent, Rows, TableSpec, dec

ZERO = Decimal(0)
FUNDED = "TradingSession.Started"
FILLED = "Position.FillApplied"
MARKED = "RiskDesk.MarkObserved"
BOOK_EVENTS = frozenset({FUNDED, FILLED, MARKED})


def book_tables(prefix: str) -> tuple[TableSpec, TableSpec]:
    return (
        TableSpec(f"{prefix}_cash", ("id", "cash", "funded_at"), ("id",), ("id",)),
        TableSpec(
            f"{prefix}_holdings", ("instrument", "quantity", "mark", "mark_at"), ("instrument",)
        ),
    )


@dataclass(frozen=True)
class Holding:
    instrument: str
    quantity: Decimal
    mark: Decimal | None


class BookFold:
    """Applies one book event to the cash and holdings tables of one projection."""

    def __init__(self, prefix: str) -> None:
        self.cash_table, self.holdings_table = (t.name for t in book_tables(prefix))

    def apply(self, event: LoggedEvent, rows: Rows) -> bool:
        """Fold one event; True when it funded the book (a session start while flat)."""
        s = event.state
        if event.kind == FUNDED:
            if any(h.quantity != 0 for h in self.holdings(rows)):
                return False
            rows.put(
                self.cash_table,
                {
                    "id": 1,
                    "cash": str(dec(s["starting_capital"])),
                    "funded_at": s["timestamp"].isoformat(),
                },
            )
            return True
        if event.kind == FILLED:
            signed = (1 if s["side"] == "BUY" else -1) * dec(s["quantity"])
            cash = self.cash(rows) - signed * dec(s["price"]) - dec(s["fee"])
            current = rows.get(self.cash_table, (1,)) or {"id": 1, "funded_at": None}
            rows.put(self.cash_table, {**current, "cash": str(cash)})
            held = rows.get(self.holdings_table, (s["instrument"],))
            quantity = (dec(held["quantity"]) if held else ZERO) + signed
            rows.put(
                self.holdings_table,
                {
                    "instrument": s["instrument"],
                    "quantity": str(quantity),
                    "mark": held["mark"] if held else None,
                    "mark_at": held["mark_at"] if held else None,
                },
            )
            return False
        if event.kind == MARKED:
            held = rows.get(self.holdings_table, (s["instrument"],))
            rows.put(
                self.holdings_table,
                {
                    "instrument": s["instrument"],
                    "quantity": held["quantity"] if held else "0",
                    "mark": str(dec(s["price"])),
                    "mark_at": s["at"].isoformat(),
                },
            )
        return False

    def cash(self, rows: Rows) -> Decimal:
        row = rows.get(self.cash_table, (1,))
        return dec(row["cash"]) if row else ZERO

    def holdings(self, rows: Rows) -> list[Holding]:
        return [
            Holding(
                r["instrument"], dec(r["quantity"]), None if r["mark"] is None else dec(r["mark"])
            )
            for r in rows.scan(self.holdings_table)
        ]

    def nav(self, rows: Rows) -> Decimal | None:
        """Cash plus the sum of quantity times mark; unknown while a held instrument has no mark."""
        total = self.cash(rows)
        for h in self.holdings(rows):
            if h.quantity == 0:
                continue
            if h.mark is None:
                return None
            total += h.quantity * h.mark
        return total
