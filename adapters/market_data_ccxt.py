"""Market data from a venue through ccxt: closed candles, ticker, order book, funding rate.

`CcxtMarketData` implements the `MarketData` port over ccxt's `fetch_ohlcv`. The ccxt client
is built exactly like the exchange gateway's (`CcxtGateway._build_exchange`: venue options,
`base_url` override, `number = str`) and every ccxt call runs in a private decimal context
(`_DecimalIsolated`). Prices become Decimals from the venue's decimal text, never floats.

Every bar is checked with the same rules as the CSV source (`checked_bar`: finite positive
prices, high/low bound open/close, no duplicate or out-of-order timestamp) plus alignment
to the timeframe's grid; a bad bar raises `CandleDataError` naming venue, symbol and bar.
Missing bars are kept as explicit gaps (`gaps`), never filled. Only bars that have closed
by `until` (and by the venue's clock) are returned: the bar still forming is never cached.
Fetched bars are cached per instrument; later calls ask the venue only for newer bars.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from adapters.exchange.ccxt_gateway import CcxtGateway, GatewayConfig, _DecimalIsolated
from adapters.market_data_csv import CandleDataError, checked_bar
from application.ports import Candle, Clock


@dataclass(frozen=True)
class Ticker:
    instrument: str
    at: datetime | None
    bid: Decimal | None
    ask: Decimal | None
    last: Decimal | None


@dataclass(frozen=True)
class BookLevel:
    price: Decimal
    quantity: Decimal


@dataclass(frozen=True)
class OrderBook:
    instrument: str
    at: datetime | None
    bids: tuple[BookLevel, ...]  # best (highest) first
    asks: tuple[BookLevel, ...]  # best (lowest) first


@dataclass(frozen=True)
class FundingRate:
    instrument: str
    rate: Decimal
    mark_price: Decimal | None
    next_funding_at: datetime | None


def ccxt_symbol(instrument: str, market: str = "spot") -> str:
    """`BTC-USDT` → `BTC/USDT` (or `BTC/USDT:USDT` on a swap venue);
    `BTC-USDT-PERP` → `BTC/USDT:USDT`."""
    parts = instrument.split("-")
    if len(parts) == 3 and parts[2] == "PERP" and all(parts[:2]):
        return f"{parts[0]}/{parts[1]}:{parts[1]}"
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"cannot map instrument {instrument!r} to a ccxt symbol")
    base, quote = parts
    return f"{base}/{quote}" if market == "spot" else f"{base}/{quote}:{quote}"


def instrument_of(symbol: str) -> str:
    """`BTC/USDT` → `BTC-USDT`; `BTC/USDT:USDT` → `BTC-USDT-PERP`."""
    pair, _, settle = symbol.partition(":")
    base, slash, quote = pair.partition("/")
    if not (base and slash and quote) or (settle and settle != quote):
        raise ValueError(f"cannot map ccxt symbol {symbol!r} to an instrument")
    return f"{base}-{quote}-PERP" if settle else f"{base}-{quote}"


def _dec(value: Any, where: str) -> Decimal | None:
    if value is None or value == "":
        return None
    result = Decimal(str(value))
    if not result.is_finite() or result <= 0:
        raise CandleDataError(f"{where}: not a positive number: {value!r}")
    return result


def _rate(value: Any, where: str) -> Decimal:
    if value is None or value == "":
        raise CandleDataError(f"{where}: no funding rate")
    result = Decimal(str(value))
    if not result.is_finite():
        raise CandleDataError(f"{where}: funding rate is not finite: {value!r}")
    return result


def _at(ms: Any) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(int(ms) / 1000, tz=UTC)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class CcxtMarketData:
    """MarketData over one ccxt venue. Not thread-safe: one caller at a time."""

    def __init__(
        self,
        config: GatewayConfig,
        instruments: Sequence[str],
        *,
        timeframe: str = "1m",
        page: int = 1000,
        now: Clock = lambda: datetime.now(UTC),
        exchange: Any = None,
    ) -> None:
        if page < 1:
            raise ValueError("page must be at least 1")
        self.config = config
        self.venue = config.venue
        self.exchange = _DecimalIsolated(
            exchange if exchange is not None else CcxtGateway._build_exchange(config)
        )
        self.timeframe = timeframe
        self.step = timedelta(seconds=int(self.exchange.parse_timeframe(timeframe)))
        self.page = page
        self._now = now
        self.symbols = {
            i: config.symbols.get(i) or ccxt_symbol(i, config.market) for i in instruments
        }
        self._bars: dict[str, list[Candle]] = {i: [] for i in self.symbols}
        self._from: dict[str, datetime] = {}  # first bar open time the cache covers
        self._to: dict[str, datetime] = {}  # every bar closing by this moment is cached
        self._gaps: dict[str, list[tuple[datetime, int]]] = {i: [] for i in self.symbols}
        self.fetches = 0  # fetch_ohlcv calls made (tests: the cache works)

    # --- MarketData ---------------------------------------------------------------------------
    def instruments(self) -> Sequence[str]:
        return sorted(self.symbols)

    def candles(self, instrument: str, until: datetime, limit: int) -> Sequence[Candle]:
        """Up to `limit` bars closed by `until`, oldest first (missing bars are simply absent;
        see `gaps`)."""
        symbol = self._symbol(instrument)
        if limit <= 0:
            return []
        end = self._floor(min(until, self._now()))  # bars closing by `end` have closed
        start = end - self.step * limit
        if instrument not in self._from or start < self._from[instrument]:
            self._bars[instrument] = []
            self._gaps[instrument] = []
            self._from[instrument] = start
            self._to[instrument] = start
        if end > self._to[instrument]:
            self._fetch(instrument, symbol, end)
        bars = self._bars[instrument]
        stop = bisect.bisect_right([c.opens_at + self.step for c in bars], until)
        return tuple(bars[max(0, stop - limit) : stop])

    def gaps(self, instrument: str) -> tuple[tuple[datetime, int], ...]:
        """(first missing bar, how many) within the cached range."""
        self._symbol(instrument)
        return tuple(self._gaps[instrument])

    # --- the rest of the venue's public data ----------------------------------------------
    def ticker(self, instrument: str) -> Ticker:
        symbol = self._symbol(instrument)
        raw = self.exchange.fetch_ticker(symbol)
        where = f"{self.venue} {symbol} ticker"
        return Ticker(
            instrument=instrument,
            at=_at(raw.get("timestamp")),
            bid=_dec(raw.get("bid"), where),
            ask=_dec(raw.get("ask"), where),
            last=_dec(raw.get("last"), where),
        )

    def order_book(self, instrument: str, depth: int) -> OrderBook:
        symbol = self._symbol(instrument)
        raw = self.exchange.fetch_order_book(symbol, depth)
        where = f"{self.venue} {symbol} order book"

        def levels(side: str, best_first: int) -> tuple[BookLevel, ...]:
            out: list[BookLevel] = []
            for entry in raw.get(side) or []:
                price = _dec(entry[0], f"{where} {side}")
                quantity = _dec(entry[1], f"{where} {side}")
                if price is None or quantity is None:
                    raise CandleDataError(f"{where}: {side} level without price or quantity")
                if out and (price - out[-1].price) * best_first <= 0:
                    raise CandleDataError(f"{where}: {side} are not ordered best first")
                out.append(BookLevel(price, quantity))
            return tuple(out[:depth])

        bids, asks = levels("bids", -1), levels("asks", 1)
        if bids and asks and bids[0].price >= asks[0].price:
            raise CandleDataError(f"{where}: crossed book {bids[0].price} >= {asks[0].price}")
        return OrderBook(instrument, _at(raw.get("timestamp")), bids, asks)

    def funding_rate(self, instrument: str) -> FundingRate:
        symbol = self._symbol(instrument)
        raw = self.exchange.fetch_funding_rate(symbol)
        where = f"{self.venue} {symbol} funding"
        return FundingRate(
            instrument=instrument,
            rate=_rate(raw.get("fundingRate"), where),
            mark_price=_dec(raw.get("markPrice"), where),
            next_funding_at=_at(raw.get("fundingTimestamp")),
        )

    # --- internals --------------------------------------------------------------------------
    def _symbol(self, instrument: str) -> str:
        try:
            return self.symbols[instrument]
        except KeyError:
            raise ValueError(f"{self.venue}: unknown instrument {instrument!r}") from None

    def _floor(self, moment: datetime) -> datetime:
        step_ms = _ms(datetime.fromtimestamp(0, UTC) + self.step)
        return _at(_ms(moment) // step_ms * step_ms) or moment

    def _fetch(self, instrument: str, symbol: str, end: datetime) -> None:
        """Append every bar that opens at or after the covered point and closes by `end`."""
        bars = self._bars[instrument]
        cursor = self._to[instrument]
        while cursor < end:
            last_open = end - self.step
            self.fetches += 1
            rows = self.exchange.fetch_ohlcv(
                symbol, self.timeframe, _ms(cursor), self.page, {"until": _ms(last_open)}
            )
            fresh = [row for row in rows if _at(row[0]) is not None]
            for row in fresh:
                self._append(instrument, symbol, bars, row, cursor, end)
            if len(fresh) < self.page or not bars or bars[-1].opens_at >= last_open:
                break
            cursor = bars[-1].opens_at + self.step
        self._to[instrument] = end  # a missing tail shows as a gap once a later bar arrives

    def _append(
        self,
        instrument: str,
        symbol: str,
        bars: list[Candle],
        row: Sequence[Any],
        cursor: datetime,
        end: datetime,
    ) -> None:
        opens_at = _at(row[0])
        assert opens_at is not None
        where = f"{self.venue} {symbol} {self.timeframe} bar {opens_at.isoformat()}"
        if len(row) < 6:
            raise CandleDataError(f"{where}: expected 6 fields, got {len(row)}")
        if opens_at + self.step > end:
            return  # still forming (or after `until`): never cached
        if _ms(opens_at) % _ms(datetime.fromtimestamp(0, UTC) + self.step):
            raise CandleDataError(f"{where}: not aligned to the {self.timeframe} grid")
        previous = bars[-1] if bars else None
        if previous is None and opens_at < cursor:
            raise CandleDataError(f"{where}: before the requested start {cursor.isoformat()}")
        bar = checked_bar(where, instrument, opens_at, row[1:6], previous, row[0])
        self._note_gap(instrument, previous.opens_at if previous else None, opens_at)
        bars.append(bar)

    def _note_gap(self, instrument: str, previous: datetime | None, next_open: datetime) -> None:
        first = previous + self.step if previous is not None else self._from[instrument]
        missing = int((next_open - first) / self.step)
        if missing > 0:
            self._gaps[instrument].append((first, missing))
