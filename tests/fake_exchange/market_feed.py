"""Public market data for the fake Binance: klines, 24h ticker and depth.

Klines are the REAL bars of data/binance_BTCUSDT_1m.csv (see data/PROVENANCE.md) in
Binance's kline array format (`binance_api_docs/klines_response.json`: open time, OHLCV as
decimal text, close time, quote volume, trades, taker volumes, ignore). Ticker and depth
keep the keys and formats of `ticker_24hr_response.json` / `depth_response.json` and are
filled from the same bars. `corrupt` makes the next answers carry a bad kline.
"""

from __future__ import annotations

import csv
import json
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.fake_exchange.book import FIXTURES, VenueError

CSV = Path(__file__).resolve().parents[2] / "data" / "binance_BTCUSDT_1m.csv"
MINUTE_MS = 60_000
INTERVAL_MS = {"1s": 1000, "1m": MINUTE_MS}  # the kline intervals the fake can serve


def _doc(name: str) -> Any:
    return json.loads((FIXTURES / "binance_api_docs" / f"{name}.json").read_text())


def csv_rows(path: Path = CSV) -> list[list[str]]:
    """The file's rows as text: timestamp_ms, open, high, low, close, volume."""
    with path.open(newline="", encoding="utf-8") as handle:
        return [row[:6] for row in list(csv.reader(handle))[1:]]


@dataclass
class KlineFeed:
    """BTCUSDT 1m bars the venue serves, and the control surface tests use."""

    rows: list[list[str]] = field(default_factory=csv_rows)
    corruptions: dict[int, list[str]] = field(default_factory=dict)  # open ms → replacement
    lock: threading.Lock = field(default_factory=threading.Lock)
    funding_rate: str = "0.00010000"  # lastFundingRate of /fapi/v1/premiumIndex
    ignore_end_time: bool = False  # answer past endTime (a venue sending the forming bar)
    interval: str = "1m"  # the one kline interval served

    @classmethod
    def on_grid(cls, rows: list[list[str]], interval: str, first_open_ms: int) -> KlineFeed:
        """Recorded bars re-timed onto `interval` from `first_open_ms` on, so a loop on the
        wall clock sees a new bar close every interval (seconds-long shadow runs)."""
        step = INTERVAL_MS[interval]
        timed = [[str(first_open_ms + i * step), *r[1:]] for i, r in enumerate(rows)]
        return cls(rows=timed, interval=interval)

    @property
    def step_ms(self) -> int:
        return INTERVAL_MS[self.interval]

    def corrupt(self, opens_ms: int, **changes: str) -> None:
        """Serve the bar opening at `opens_ms` with the given columns replaced
        (open/high/low/close/volume, or `timestamp` to duplicate/misplace it)."""
        names = ("timestamp", "open", "high", "low", "close", "volume")
        unknown = set(changes) - set(names)
        if unknown:
            raise KeyError(f"no kline column {sorted(unknown)}")
        with self.lock:
            row = next(r for r in self.rows if int(r[0]) == opens_ms)
            self.corruptions[opens_ms] = [
                changes.get(n, v) for n, v in zip(names, row, strict=True)
            ]

    def served(self) -> list[list[str]]:
        with self.lock:
            return [self.corruptions.get(int(r[0]), r) for r in self.rows]


def _kline(row: list[str], step_ms: int) -> list[Any]:
    template = _doc("klines_response")[0]
    opens = int(row[0])
    volume = Decimal(row[5])
    quote = volume * Decimal(row[4])
    out: list[Any] = [
        opens,
        *(f"{Decimal(x):.8f}" if _is_number(x) else x for x in row[1:6]),
        opens + step_ms - 1,
        f"{quote:.8f}",
        0,
        f"{Decimal(0):.8f}",
        f"{Decimal(0):.8f}",
        "0",
    ]
    assert [type(x) for x in out] == [type(x) for x in template]
    return out


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return True


def klines(feed: KlineFeed, params: dict[str, str], now_ms: int) -> list[list[Any]]:
    if params.get("symbol") != "BTCUSDT":
        raise VenueError(400, -1121, "Invalid symbol.")
    if params.get("interval") != feed.interval:
        raise VenueError(400, -1120, "Invalid interval.")
    start = int(params.get("startTime", "0"))
    end = int(params.get("endTime", str(now_ms)))
    if feed.ignore_end_time:
        end = now_ms
    limit = min(int(params.get("limit", "500")), 1000)
    rows = [r for r in feed.served() if start <= int(r[0]) <= end]
    return [_kline(r, feed.step_ms) for r in rows[:limit]]


def ticker_24hr(feed: KlineFeed, params: dict[str, str], now_ms: int) -> dict[str, Any]:
    if params.get("symbol") != "BTCUSDT":
        raise VenueError(400, -1121, "Invalid symbol.")
    rows = feed.rows[-1440:]
    first, last = rows[0], rows[-1]
    close, opened = Decimal(last[4]), Decimal(first[1])
    volume = sum((Decimal(r[5]) for r in rows), Decimal(0))
    quote = sum((Decimal(r[5]) * Decimal(r[4]) for r in rows), Decimal(0))
    template = _doc("ticker_24hr_response")
    values: dict[str, Any] = {
        "symbol": "BTCUSDT",
        "priceChange": f"{close - opened:.8f}",
        "priceChangePercent": f"{(close - opened) / opened * 100:.3f}",
        "weightedAvgPrice": f"{quote / volume:.8f}",
        "prevClosePrice": f"{Decimal(rows[-2][4]):.8f}",
        "lastPrice": f"{close:.8f}",
        "lastQty": "0.01000000",
        "bidPrice": f"{close - Decimal('0.01'):.8f}",
        "bidQty": "1.50000000",
        "askPrice": f"{close:.8f}",
        "askQty": "0.75000000",
        "openPrice": f"{opened:.8f}",
        "highPrice": f"{max(Decimal(r[2]) for r in rows):.8f}",
        "lowPrice": f"{min(Decimal(r[3]) for r in rows):.8f}",
        "volume": f"{volume:.8f}",
        "quoteVolume": f"{quote:.8f}",
        "openTime": int(first[0]),
        "closeTime": int(last[0]) + feed.step_ms - 1,
        "firstId": 1,
        "lastId": len(rows),
        "count": len(rows),
    }
    assert list(values) == list(template)
    return values


# Levels around the last close (price, quantity), best first.
BIDS = (("-0.01", "1.5"), ("-0.50", "0.25"), ("-1.00", "3"))
ASKS = (("0", "0.75"), ("0.49", "2"), ("1.20", "0.1"))


def depth(feed: KlineFeed, params: dict[str, str], now_ms: int) -> dict[str, Any]:
    if params.get("symbol") != "BTCUSDT":
        raise VenueError(400, -1121, "Invalid symbol.")
    limit = int(params.get("limit", "100"))
    close = Decimal(feed.rows[-1][4])
    template = _doc("depth_response")
    body = {
        "lastUpdateId": now_ms,
        "bids": [[f"{close + Decimal(d):.8f}", f"{Decimal(q):.8f}"] for d, q in BIDS][:limit],
        "asks": [[f"{close + Decimal(d):.8f}", f"{Decimal(q):.8f}"] for d, q in ASKS][:limit],
    }
    assert list(body) == list(template)
    return body


# GET /fapi/v1/premiumIndex: no recorded sample in tests/fixtures, so the keys are the ones
# Binance documents for "Mark Price and Funding Rate" (symbol, markPrice, indexPrice,
# estimatedSettlePrice, lastFundingRate, interestRate, nextFundingTime, time); the rate is
# the feed's `funding_rate`, the mark the fake venue's price.
FUNDING_EVERY_MS = 8 * 3600 * 1000


def premium_index(
    feed: KlineFeed, params: dict[str, str], now_ms: int, mark: Decimal
) -> dict[str, Any]:
    if params.get("symbol") != "BTCUSDT":
        raise VenueError(400, -1121, "Invalid symbol.")
    return {
        "symbol": "BTCUSDT",
        "markPrice": f"{mark:.8f}",
        "indexPrice": f"{mark:.8f}",
        "estimatedSettlePrice": f"{mark:.8f}",
        "lastFundingRate": feed.funding_rate,
        "interestRate": "0.00010000",
        "nextFundingTime": (now_ms // FUNDING_EVERY_MS + 1) * FUNDING_EVERY_MS,
        "time": now_ms,
    }
