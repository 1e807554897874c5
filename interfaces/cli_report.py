"""`ais report lots --year YYYY [--out FILE]`: realized gains per lot (FIFO) as CSV.

Reads the position fills straight from the event log (the event timestamp is the fill
time) and matches them with `projections.lots`. Registered in interfaces/cli.py.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from eventsourcing.persistence import PersistenceError
from sqlalchemy.exc import SQLAlchemyError

from adapters.event_log import StoredEventSource
from adapters.persistence import eventsourcing_env
from adapters.settings import ConfigError, Settings, load_catalog
from domain.values import Side
from projections.lots import LotFill, lots_for_year, quote_currency, write_csv

report_app = typer.Typer(no_args_is_help=True, help="Reports computed from the event log")

FILL_KIND = "Position.FillApplied"


def _at(value: object) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        raise ValueError(f"fill timestamp {value!r} has no timezone")
    return moment


def _dec(value: object) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def position_fills(source: StoredEventSource, batch: int = 5000) -> Iterator[LotFill]:
    """Every applied fill in log order."""
    after = 0
    while True:
        events = source.read(after, batch)
        if not events:
            return
        for event in events:
            if event.kind == FILL_KIND:
                s = event.state
                yield LotFill(
                    book=event.originator_id,
                    instrument=str(s["instrument"]),
                    side=Side(s["side"]),
                    quantity=_dec(s["quantity"]),
                    price=_dec(s["price"]),
                    fee=_dec(s["fee"]),
                    at=_at(s["timestamp"]),
                )
        after = events[-1].position


def _quote_resolver(settings: Settings) -> dict[str, str]:
    try:
        catalog = load_catalog(settings.config_dir / "instruments.toml")
    except (ConfigError, OSError):
        return {}
    return {symbol: catalog.get(symbol).quote for symbol in catalog.symbols()}


@report_app.command("lots")
def lots(
    year: Annotated[int | None, typer.Option("--year", help="disposal year (UTC)")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="write the CSV here instead of stdout")
    ] = None,
) -> None:
    """Realized gains per lot, FIFO, as CSV (exact decimals, ISO-8601 UTC times)."""
    if year is not None and not 1970 <= year <= 9999:
        print(f"error: --year must be a four-digit year, got {year}", file=sys.stderr)
        raise typer.Exit(1)
    settings = Settings()
    quotes = _quote_resolver(settings)

    def quote_of(instrument: str) -> str:
        return quotes.get(instrument) or quote_currency(instrument)

    try:
        source = StoredEventSource(eventsourcing_env(settings.database_url, settings.home))
        try:
            realized = lots_for_year(position_fills(source), year)
        finally:
            source.close()
        if out is None:
            count = write_csv(realized, sys.stdout, quote_of)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            with out.open("w", newline="", encoding="utf-8") as handle:
                count = write_csv(realized, handle, quote_of)
    except (ConfigError, PersistenceError, SQLAlchemyError, ValueError, OSError) as exc:
        text = str(exc).strip()
        print(f"error: {text.splitlines()[0] if text else type(exc).__name__}", file=sys.stderr)
        raise typer.Exit(1) from None
    print(f"{count} lots", file=sys.stderr)
