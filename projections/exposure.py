"""Exposure read model: long, short, gross, net, leverage and weight per instrument."""

from __future__ import annotations

from decimal import Decimal

from projections.book import BOOK_EVENTS, ZERO, BookFold, book_tables
from projections.spec import LoggedEvent, Rows, TableSpec, money

BY_INSTRUMENT = TableSpec(
    "exposure", ("instrument", "quantity", "mark", "notional", "weight"), ("instrument",)
)
TOTALS = TableSpec(
    "exposure_totals",
    ("id", "nav", "long", "short", "gross", "net", "leverage", "position"),
    ("id",),
    ("id", "position"),
)


class ExposureProjection:
    name = "exposure"
    version = 3
    handling_cost = 0.5  # per event, for splitting a rebuild (projections.lanes)
    tables: tuple[TableSpec, ...] = (BY_INSTRUMENT, TOTALS, *book_tables("exposure"))

    def __init__(self) -> None:
        self.book = BookFold("exposure")
        self._changed: tuple[Rows, int] | None = None  # (batch, last book event in it)

    def wants(self, kind: str) -> bool:
        return kind in BOOK_EVENTS

    def handle(self, event: LoggedEvent, rows: Rows) -> None:
        if self.wants(event.kind):
            self.book.apply(event, rows)
            self._changed = (rows, event.position)

    def finish(self, rows: Rows, position: int) -> None:
        """Exposure is a function of the book: write it once, as of the batch's end."""
        if self._changed is None or self._changed[0] is not rows:
            return
        as_of = self._changed[1]
        self._changed = None
        nav = self.book.nav(rows)
        long = short = ZERO
        for h in self.book.holdings(rows):
            notional = h.quantity * h.mark if h.mark is not None else None
            if notional is not None and notional > 0:
                long += notional
            elif notional is not None:
                short -= notional
            weight = notional / nav if notional is not None and nav else None
            row = {
                "instrument": h.instrument,
                "quantity": str(h.quantity),
                "mark": money(h.mark),
                "notional": money(notional),
                "weight": money(weight),
            }
            if rows.get("exposure", (h.instrument,)) != row:
                rows.put("exposure", row)
        gross = long + short
        leverage: Decimal | None = gross / nav if nav else None
        rows.put(
            "exposure_totals",
            {
                "id": 1,
                "nav": money(nav),
                "long": str(long),
                "short": str(short),
                "gross": str(gross),
                "net": str(long - short),
                "leverage": money(leverage),
                "position": as_of,
            },
        )
