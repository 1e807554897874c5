"""`ais report lots --year YYYY [--format generic|koinly|cointracking] [--out FILE]`.

Realized gains per lot (FIFO) as CSV, from the position fills in the event log
(`interfaces.lot_source`), in the layout `projections.lot_formats` writes (the console
downloads the same). Registered in interfaces/cli.py.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from eventsourcing.persistence import PersistenceError
from sqlalchemy.exc import SQLAlchemyError

from adapters.event_log import StoredEventSource
from adapters.persistence import eventsourcing_env
from adapters.settings import ConfigError, Settings
from interfaces.lot_source import pair_resolver, realized_lots
from projections.lot_formats import FORMATS, write_lots

report_app = typer.Typer(no_args_is_help=True, help="Reports computed from the event log")


@report_app.command("lots")
def lots(
    year: Annotated[int | None, typer.Option("--year", help="disposal year (UTC)")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="write the CSV here instead of stdout")
    ] = None,
    layout: Annotated[
        str,
        typer.Option("--format", help="generic (one row per lot), koinly or cointracking"),
    ] = "generic",
) -> None:
    """Realized gains per lot, FIFO, as CSV (exact decimals, UTC times)."""
    if year is not None and not 1970 <= year <= 9999:
        print(f"error: --year must be a four-digit year, got {year}", file=sys.stderr)
        raise typer.Exit(1)
    if layout not in FORMATS:
        print(f"error: --format {layout!r}: use {', '.join(FORMATS)}", file=sys.stderr)
        raise typer.Exit(1)
    settings = Settings()
    pair_of = pair_resolver(settings.config_dir)
    try:
        source = StoredEventSource(eventsourcing_env(settings.database_url, settings.home))
        try:
            realized = realized_lots(source, year)
        finally:
            source.close()
        if out is None:
            count = write_lots(realized, sys.stdout, layout, pair_of)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            with out.open("w", newline="", encoding="utf-8") as handle:
                count = write_lots(realized, handle, layout, pair_of)
    except (ConfigError, PersistenceError, SQLAlchemyError, ValueError, OSError) as exc:
        text = str(exc).strip()
        print(f"error: {text.splitlines()[0] if text else type(exc).__name__}", file=sys.stderr)
        raise typer.Exit(1) from None
    print(f"{count} lots", file=sys.stderr)
