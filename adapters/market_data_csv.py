"""Candles from CSV files (`timestamp_ms,open,high,low,close,volume`), validated on load.

Bad rows are refused with the file and line; missing bars are kept as explicit gaps
(the loop simply has no new bar for that instrument then), never filled with guesses.
"""

from __future__ import annotations

import bisect
import csv
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

from application.ports import Candle
from domain.values import MAX_MAGNITUDE

COLUMNS = ("timestamp_ms", "open", "high", "low", "close", "volume")


FIELD_LIMIT = 64  # characters in one candle field: a millisecond stamp or a decimal


class CandleDataError(ValueError):
    """A candle file that cannot be trusted; the message names file and line."""


@dataclass(frozen=True)
class CandleSeries:
    instrument: str
    timeframe: timedelta
    candles: tuple[Candle, ...]
    gaps: tuple[tuple[datetime, int], ...]  # (first missing bar, how many)


def _decimal(value: str, where: str, name: str) -> Decimal:
    try:
        result = Decimal(value)
    except InvalidOperation:
        raise CandleDataError(f"{where}: {name} is not a number: {value!r}") from None
    if not result.is_finite():
        raise CandleDataError(f"{where}: {name} is not finite: {value!r}")
    if abs(result) >= MAX_MAGNITUDE:
        raise CandleDataError(f"{where}: {name} is out of range: {value!r}")
    return result


def checked_bar(
    where: str,
    instrument: str,
    opens_at: datetime,
    values: Sequence[object],
    previous: Candle | None,
    stamp: object,
) -> Candle:
    """One bar from its open/high/low/close/volume text, checked on its own and against the
    bar before it (shared by every candle source: CSV files, ccxt)."""
    o, h, lo, c, v = (_decimal(str(x), where, n) for x, n in zip(values, COLUMNS[1:], strict=True))
    if min(o, h, lo, c) <= 0:
        raise CandleDataError(f"{where}: prices must be positive")
    if v < 0:
        raise CandleDataError(f"{where}: volume must not be negative")
    if h < lo or h < max(o, c) or lo > min(o, c):
        raise CandleDataError(f"{where}: high/low do not bound open/close")
    if previous is not None and opens_at <= previous.opens_at:
        kind = "duplicate" if opens_at == previous.opens_at else "out-of-order"
        raise CandleDataError(f"{where}: {kind} timestamp {stamp}")
    return Candle(instrument, opens_at, o, h, lo, c, v)


def read_candles(path: Path, instrument: str) -> CandleSeries:
    """Parse and check one file; the timeframe is the smallest step between bars."""
    try:
        # Undecodable bytes stay in the text as surrogates, so the field that holds them
        # is refused with its exact line ("not a number"), like any other bad value.
        handle = path.open(newline="", encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise CandleDataError(f"{path}: cannot read: {exc.strerror}") from None
    with handle:
        reader = csv.reader(handle)
        try:
            candles = _rows(path, instrument, reader)
        except csv.Error as exc:  # e.g. a NUL byte
            raise CandleDataError(f"{path}:{reader.line_num}: {exc}") from None
    if len(candles) < 2:
        raise CandleDataError(f"{path}: needs at least two candles")
    steps = [b.opens_at - a.opens_at for a, b in itertools.pairwise(candles)]
    timeframe = min(steps)
    gaps = tuple(
        (a.opens_at + timeframe, int(step / timeframe) - 1)
        for a, step in zip(candles, steps, strict=False)
        if step != timeframe
    )
    if any(step % timeframe for step in steps):
        raise CandleDataError(f"{path}: bars are not aligned to a {timeframe} grid")
    return CandleSeries(instrument, timeframe, tuple(candles), gaps)


def _rows(path: Path, instrument: str, reader: Iterator[list[str]]) -> list[Candle]:
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header[:6]) != COLUMNS:
        raise CandleDataError(f"{path}: header must be {','.join(COLUMNS)}")
    candles: list[Candle] = []
    for line, row in enumerate(reader, start=2):
        where = f"{path}:{line}"
        if len(row) < 6:
            raise CandleDataError(f"{where}: expected 6 columns, got {len(row)}")
        longest = max(len(field) for field in row)
        if longest > FIELD_LIMIT:
            # csv's own field limit is process-wide state that other readers may raise
            raise CandleDataError(
                f"{where}: a field of {longest} characters is over the {FIELD_LIMIT} limit"
            )
        try:
            opens_at = datetime.fromtimestamp(int(row[0]) / 1000, tz=UTC)
        except (ValueError, OverflowError, OSError):
            raise CandleDataError(f"{where}: bad timestamp {row[0]!r}") from None
        previous = candles[-1] if candles else None
        candles.append(checked_bar(where, instrument, opens_at, row[1:6], previous, row[0]))
    return candles


def instrument_from_filename(path: Path) -> str:
    """`ETHBTC_5m.csv` → `ETH-BTC`; `BTC-PERP_1m.csv` → `BTC-PERP`;
    `binance_BTCUSDT_1m.csv` → `BTC-USDT` (a lower-case first part names the venue)."""
    parts = path.stem.split("_")
    stem = parts[1] if len(parts) > 2 and parts[0].islower() else parts[0]
    if "-" in stem:
        return stem
    for quote in ("USDT", "BTC", "USD", "ETH"):
        if stem.endswith(quote) and len(stem) > len(quote):
            return f"{stem[: -len(quote)]}-{quote}"
    raise CandleDataError(f"{path}: cannot tell the instrument from the file name")


class CsvMarketData:
    """MarketData over validated series; a bar is visible only once it has closed."""

    def __init__(self, series: Sequence[CandleSeries]) -> None:
        self.series = {s.instrument: s for s in series}
        self._closes = {s.instrument: [c.opens_at + s.timeframe for c in s.candles] for s in series}

    @classmethod
    def from_paths(cls, paths: Sequence[Path]) -> CsvMarketData:
        return cls([read_candles(p, instrument_from_filename(p)) for p in paths])

    def instruments(self) -> Sequence[str]:
        return sorted(self.series)

    def candles(self, instrument: str, until: datetime, limit: int) -> Sequence[Candle]:
        closes = self._closes[instrument]
        end = bisect.bisect_right(closes, until)
        return self.series[instrument].candles[max(0, end - limit) : end]

    def clock_ticks(self) -> list[datetime]:
        """Every moment a bar closes on any instrument, in order: the backtest's clock."""
        return sorted({t for closes in self._closes.values() for t in closes})
