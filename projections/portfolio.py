"""Portfolio read model: NAV at every mark, high-water mark, drawdown, daily P&L."""

from __future__ import annotations

from decimal import Decimal

from projections.book import BOOK_EVENTS, MARKED, ZERO, BookFold, book_tables
from projections.spec import LoggedEvent, Rows, TableSpec, dec, money, num

SUMMARY = TableSpec(
    "portfolio",
    (
        "id",
        "cash",
        "nav",
        "high_water_mark",
        "drawdown",
        "max_drawdown",
        "day",
        "day_start_nav",
        "daily_pnl",
        "as_of",
        "position",
    ),
    ("id",),
    ("id", "position"),
)
HISTORY = TableSpec(
    "nav_history",
    ("position", "at", "nav", "high_water_mark", "drawdown"),
    ("position",),
    ("position",),
)
DAILY = TableSpec("daily_pnl", ("day", "start_nav", "end_nav", "pnl"), ("day",))


def drawdown(nav: Decimal, high_water_mark: Decimal) -> Decimal:
    return 1 - nav / high_water_mark if high_water_mark > 0 else ZERO


class PortfolioProjection:
    name = "portfolio"
    version = 2
    handling_cost = 1.4  # per event, for splitting a rebuild (projections.lanes)
    tables: tuple[TableSpec, ...] = (SUMMARY, HISTORY, DAILY, *book_tables("portfolio"))

    def __init__(self) -> None:
        self.book = BookFold("portfolio")

    def wants(self, kind: str) -> bool:
        return kind in BOOK_EVENTS

    def handle(self, event: LoggedEvent, rows: Rows) -> None:
        if not self.wants(event.kind):
            return
        before = rows.get("portfolio", (1,))
        nav_before = self.book.nav(rows)
        funded = self.book.apply(event, rows)
        nav = self.book.nav(rows)
        summary = dict(before) if before else self._empty()
        summary.update(cash=str(self.book.cash(rows)), nav=money(nav), position=event.position)
        if funded and nav is not None:
            at = event.state["timestamp"]
            summary.update(
                high_water_mark=str(nav),
                day=at.date().isoformat(),
                day_start_nav=str(nav),
                daily_pnl="0",
                drawdown="0",
            )
        if event.kind == MARKED and nav is not None:
            self._at_mark(event, rows, summary, nav, nav_before)
        rows.put("portfolio", summary)

    def _at_mark(
        self,
        event: LoggedEvent,
        rows: Rows,
        summary: dict[str, object],
        nav: Decimal,
        nav_before: Decimal | None,
    ) -> None:
        at = event.state["at"]
        day = at.date().isoformat()
        if summary["day"] != day:
            start = nav_before if nav_before is not None and summary["day"] else nav
            summary.update(day=day, day_start_nav=str(start))
        hwm = max(dec(summary["high_water_mark"] or "0"), nav)
        dd = drawdown(nav, hwm)
        max_dd = max(dec(summary["max_drawdown"] or "0"), dd)
        start_nav = dec(summary["day_start_nav"])
        summary.update(
            high_water_mark=str(hwm),
            drawdown=num(dd),
            max_drawdown=num(max_dd),
            daily_pnl=str(nav - start_nav),
            as_of=at.isoformat(),
        )
        rows.put(
            "nav_history",
            {
                "position": event.position,
                "at": at.isoformat(),
                "nav": str(nav),
                "high_water_mark": str(hwm),
                "drawdown": num(dd),
            },
        )
        rows.put(
            "daily_pnl",
            {
                "day": day,
                "start_nav": str(start_nav),
                "end_nav": str(nav),
                "pnl": str(nav - start_nav),
            },
        )

    @staticmethod
    def _empty() -> dict[str, object]:
        return {
            "id": 1,
            "high_water_mark": None,
            "drawdown": None,
            "max_drawdown": "0",
            "day": None,
            "day_start_nav": None,
            "daily_pnl": None,
            "as_of": None,
        }
