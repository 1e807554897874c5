"""Realized lots from the event log: what `ais report lots` and `GET /v1/reports/lots` share.

Reads the position fills straight from the log (the event timestamp is the fill time),
matches them FIFO with `projections.lots`, and names each instrument's base and quote
currency from the instrument catalog (falling back to splitting the symbol).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from adapters.settings import ConfigError, load_catalog
from domain.values import Side
from projections.lot_formats import PairOf, split_pair
from projections.lots import LotFill, RealizedLot, lots_for_year
from projections.spec import LoggedEvent

FILL_KIND = "Position.FillApplied"


class EventReader(Protocol):
    def read(self, after: int, limit: int) -> list[LoggedEvent]: ...


def _at(value: object) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        raise ValueError(f"fill timestamp {value!r} has no timezone")
    return moment


def _dec(value: object) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def position_fills(source: EventReader, batch: int = 5000) -> Iterator[LotFill]:
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


def realized_lots(source: EventReader, year: int | None) -> list[RealizedLot]:
    """Lots disposed of in `year` (every year if None)."""
    return lots_for_year(position_fills(source), year)


def pair_resolver(config_dir: Path | None) -> PairOf:
    """(base, quote) of an instrument: the catalog's, else split from the symbol."""
    pairs: dict[str, tuple[str, str]] = {}
    if config_dir is not None:
        try:
            catalog = load_catalog(config_dir / "instruments.toml")
        except (ConfigError, OSError):
            catalog = None
        if catalog is not None:
            for symbol in catalog.symbols():
                found = catalog.get(symbol)
                pairs[symbol] = (found.base, found.quote)

    def pair_of(instrument: str) -> tuple[str, str]:
        return pairs.get(instrument) or split_pair(instrument)

    return pair_of


__all__ = ["FILL_KIND", "EventReader", "pair_resolver", "position_fills", "realized_lots"]
