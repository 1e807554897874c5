"""Candle files: real data loads with its gaps explicit; bad rows are one clear error."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.market_data_csv import CandleDataError, CsvMarketData, read_candles
from adapters.settings import PROJECT_ROOT

HEADER = "timestamp_ms,open,high,low,close,volume\n"


def test_bundled_series_load_with_their_documented_gaps() -> None:
    series = read_candles(PROJECT_ROOT / "data" / "ADABTC_5m.csv", "ADA-BTC")
    assert len(series.candles) == 5720
    assert sum(n for _, n in series.gaps) == 40 and len(series.gaps) == 5  # as PROVENANCE says
    eth = read_candles(PROJECT_ROOT / "data" / "ETHBTC_5m.csv", "ETH-BTC")
    assert eth.gaps == () and len(eth.candles) == 5760


def test_a_bar_is_visible_only_after_it_closes() -> None:
    market = CsvMarketData.from_paths([PROJECT_ROOT / "data" / "ETHBTC_5m.csv"])
    first = market.series["ETH-BTC"].candles[0]
    assert market.candles("ETH-BTC", first.opens_at, 5) == ()
    closes = first.opens_at + market.series["ETH-BTC"].timeframe
    assert market.candles("ETH-BTC", closes, 5) == (first,)
    assert market.clock_ticks()[0] == closes
    assert closes == datetime(2018, 1, 10, 5, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("1000,1,2,0.5,1.5,1\n1000,1,2,0.5,1.5,1\n", "duplicate timestamp"),
        ("2000,1,2,0.5,1.5,1\n1000,1,2,0.5,1.5,1\n", "out-of-order timestamp"),
        ("1000,0,2,0.5,1.5,1\n2000,1,2,0.5,1.5,1\n", "prices must be positive"),
        ("1000,-1,2,0.5,1.5,1\n2000,1,2,0.5,1.5,1\n", "prices must be positive"),
        ("1000,NaN,2,0.5,1.5,1\n2000,1,2,0.5,1.5,1\n", "not finite"),
        ("1000,1,0.4,0.5,0.45,1\n2000,1,2,0.5,1.5,1\n", "high/low do not bound"),
        ("1000,1,2,0.5,1.5,-3\n2000,1,2,0.5,1.5,1\n", "volume must not be negative"),
        ("1000,1,2,0.5\n", "expected 6 columns"),
        ("abc,1,2,0.5,1.5,1\n", "bad timestamp"),
        ("1000,1,2,0.5,1.5,1\n", "at least two candles"),
        ("1000,1,2,0.5,1.5,1\n61000,1,2,0.5,1.5,1\n151000,1,2,0.5,1.5,1\n", "not aligned"),
    ],
)
def test_bad_rows_are_refused_naming_file_and_line(tmp_path: Path, rows: str, message: str) -> None:
    path = tmp_path / "XBTC_1m.csv"
    path.write_text(HEADER + rows)
    with pytest.raises(CandleDataError, match=message) as error:
        read_candles(path, "X-BTC")
    assert str(path) in str(error.value)


def test_wrong_header_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("timestamp_ms,funding_rate\n1,0.0001\n")
    with pytest.raises(CandleDataError, match="header must be"):
        read_candles(path, "X")
    with pytest.raises(CandleDataError, match="cannot read"):
        read_candles(tmp_path / "missing.csv", "X")
