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


class _Parsed:
    """The book of one batch, parsed once: the rows stay the truth, this is their reading."""

    def __init__(self, rows: Rows, cash: Decimal, holdings: dict[str, Holding]) -> None:
        self.rows = rows
        self.cash = cash
        self.holdings = holdings


class BookFold:
    """Applies one book event to the cash and holdings tables of one projection.

    Every write to those tables goes through here, so a parsed copy kept for the current
    batch (the `Rows` object) stays equal to the rows without re-reading them per event.
    """

    def __init__(self, prefix: str) -> None:
        self.cash_table, self.holdings_table = (t.name for t in book_tables(prefix))
        self._parsed: _Parsed | None = None

    def _book(self, rows: Rows) -> _Parsed:
        if self._parsed is None or self._parsed.rows is not rows:
            row = rows.get(self.cash_table, (1,))
            holdings = {
                r["instrument"]: Holding(
                    r["instrument"],
                    dec(r["quantity"]),
                    None if r["mark"] is None else dec(r["mark"]),
                )
                for r in rows.scan(self.holdings_table)
            }
            self._parsed = _Parsed(rows, dec(row["cash"]) if row else ZERO, holdings)
        return self._parsed

    def apply(self, event: LoggedEvent, rows: Rows) -> bool:
        """Fold one event; True when it funded the book (a session start while flat)."""
        book = self._book(rows)
        s = event.state
        if event.kind == FUNDED:
            if any(h.quantity != 0 for h in book.holdings.values()):
                return False
            book.cash = dec(s["starting_capital"])
            rows.put(
                self.cash_table,
                {"id": 1, "cash": str(book.cash), "funded_at": event.at},
            )
            return True
        if event.kind == FILLED:
            signed = (1 if s["side"] == "BUY" else -1) * dec(s["quantity"])
            book.cash = book.cash - signed * dec(s["price"]) - dec(s["fee"])
            current = rows.get(self.cash_table, (1,)) or {"id": 1, "funded_at": None}
            rows.put(self.cash_table, {**current, "cash": str(book.cash)})
            held = book.holdings.get(s["instrument"])
            self._hold(
                book,
                rows,
                s["instrument"],
                (held.quantity if held else ZERO) + signed,
                held.mark if held else None,
                None,
            )
        elif event.kind == MARKED:
            held = book.holdings.get(s["instrument"])
            self._hold(
                book,
                rows,
                s["instrument"],
                held.quantity if held else ZERO,
                dec(s["price"]),
                s["at"].isoformat(),
            )
        return False

    def _hold(
        self,
        book: _Parsed,
        rows: Rows,
        instrument: str,
        quantity: Decimal,
        mark: Decimal | None,
        mark_at: str | None,
    ) -> None:
        row = rows.get(self.holdings_table, (instrument,))
        if mark_at is None and row is not None:
            mark_at = row["mark_at"]
        rows.put(
            self.holdings_table,
            {
                "instrument": instrument,
                "quantity": str(quantity),
                "mark": None if mark is None else str(mark),
                "mark_at": mark_at,
            },
        )
        book.holdings[instrument] = Holding(instrument, quantity, mark)

    def cash(self, rows: Rows) -> Decimal:
        return self._book(rows).cash

    def holdings(self, rows: Rows) -> list[Holding]:
        return [h for _, h in sorted(self._book(rows).holdings.items())]

    def nav(self, rows: Rows) -> Decimal | None:
        """Cash plus the sum of quantity times mark; unknown while a held instrument has no mark."""
        book = self._book(rows)
        total = book.cash
        for h in book.holdings.values():
            if h.quantity == 0:
                continue
            if h.mark is None:
                return None
            total += h.quantity * h.mark
        return total
