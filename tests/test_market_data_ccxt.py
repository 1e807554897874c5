"""CcxtMarketData driving the real ccxt client against the fake Binance, which serves the
real bars of data/binance_BTCUSDT_1m.csv as Binance klines."""

from __future__ import annotations

import decimal
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from adapters.market_data_ccxt import CcxtMarketData, ccxt_symbol, instrument_of
from adapters.market_data_csv import CandleDataError, read_candles
from tests.fake_exchange import FakeBinance, running
from tests.fake_exchange.harness import gateway_config
from tests.fake_exchange.market_feed import CSV

KLINES = "/api/v3/klines"
SERIES = read_candles(CSV, "BTC-USDT")
BARS = SERIES.candles
MINUTE = timedelta(minutes=1)


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with running() as venue:
        yield venue
    assert venue.unhandled == []


def market_data(fake: FakeBinance, **kwargs: object) -> CcxtMarketData:
    return CcxtMarketData(gateway_config(fake), ["BTC-USDT"], **kwargs)  # type: ignore[arg-type]


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_symbol_mapping() -> None:
    assert ccxt_symbol("BTC-USDT") == "BTC/USDT"
    assert ccxt_symbol("BTC-USDT-PERP") == "BTC/USDT:USDT"
    assert ccxt_symbol("BTC-USDT", "swap") == "BTC/USDT:USDT"
    assert instrument_of("BTC/USDT") == "BTC-USDT"
    assert instrument_of("BTC/USDT:USDT") == "BTC-USDT-PERP"
    for bad in ("BTCUSDT", "BTC-", "BTC-USDT-X"):
        with pytest.raises(ValueError, match="cannot map"):
            ccxt_symbol(bad)


def test_candles_equal_the_csv_rows_across_pages_with_the_gap_explicit(fake: FakeBinance) -> None:
    data = market_data(fake, page=200)
    assert data.instruments() == ["BTC-USDT"]
    until = BARS[-1].opens_at + MINUTE
    candles = data.candles("BTC-USDT", until, 1000)
    assert list(candles) == list(BARS)  # Decimal-exact, oldest first, 502 bars
    assert all(isinstance(c.close, Decimal) for c in candles)
    assert fake.count("GET", KLINES) == 3  # 1000-minute window in pages of 200
    missing = next(at for at, _ in SERIES.gaps)
    assert (missing, 1) in data.gaps("BTC-USDT")  # the absent 10:12 bar stays absent
    assert decimal.getcontext().rounding == decimal.ROUND_HALF_EVEN  # ccxt left it alone


def test_no_look_ahead_and_the_cache_fetches_only_newer_bars(fake: FakeBinance) -> None:
    fake.market_data.ignore_end_time = True  # the venue also sends the bar still forming
    clock = {"now": BARS[100].opens_at + timedelta(seconds=30)}
    data = market_data(fake, now=lambda: clock["now"])
    candles = data.candles("BTC-USDT", BARS[200].opens_at, 10)  # `until` is after venue "now"
    assert list(candles) == list(BARS[90:100])  # bar 100 is open at now: excluded
    assert data.candles("BTC-USDT", BARS[95].opens_at + timedelta(seconds=59), 3) == tuple(
        BARS[92:95]
    )  # bar 95 is still open 59 s after it opened
    first = fake.count("GET", KLINES)

    clock["now"] = BARS[105].opens_at
    assert list(data.candles("BTC-USDT", clock["now"], 10)) == list(BARS[95:105])
    assert fake.count("GET", KLINES) == first + 1
    last = [r for r in fake.requests if r.path == KLINES][-1]
    assert last.params["startTime"] == str(ms(BARS[100].opens_at))  # only newer bars
    assert data.candles("BTC-USDT", clock["now"], 10)[-1] == BARS[104]
    assert fake.count("GET", KLINES) == first + 1  # nothing new: no request


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"high": "9000", "low": "9100"}, "high/low do not bound open/close"),
        ({"open": "0"}, "prices must be positive"),
        ({"close": "NaN"}, "close is not finite"),
        ({"volume": "-1"}, "volume must not be negative"),
        ({"timestamp": str(ms(BARS[9].opens_at))}, "duplicate timestamp"),
    ],
)
def test_bad_bars_from_the_venue_are_refused(
    fake: FakeBinance, changes: dict[str, str], message: str
) -> None:
    fake.market_data.corrupt(ms(BARS[10].opens_at), **changes)
    data = market_data(fake)
    with pytest.raises(CandleDataError, match=message) as caught:
        data.candles("BTC-USDT", BARS[20].opens_at, 20)
    assert "binance BTC/USDT 1m bar" in str(caught.value)


def test_ticker_and_order_book(fake: FakeBinance) -> None:
    data = market_data(fake)
    ticker = data.ticker("BTC-USDT")
    last_close = BARS[-1].close
    assert ticker.last == last_close and ticker.ask == last_close
    assert ticker.bid == last_close - Decimal("0.01")
    book = data.order_book("BTC-USDT", 2)
    assert [(b.price, b.quantity) for b in book.bids] == [
        (last_close - Decimal("0.01"), Decimal("1.5")),
        (last_close - Decimal("0.5"), Decimal("0.25")),
    ]
    assert [a.price for a in book.asks] == [last_close, last_close + Decimal("0.49")]
    assert fake.requests[-1].params["limit"] == "2"
    with pytest.raises(ValueError, match="unknown instrument"):
        data.ticker("ETH-BTC")


def test_funding_rate_of_a_perpetual(fake: FakeBinance) -> None:
    fake.market_data.funding_rate = "-0.00012500"
    data = CcxtMarketData(
        gateway_config(fake, venue="binanceusdm", market="swap"), ["BTC-USDT-PERP"]
    )
    assert data.symbols == {"BTC-USDT-PERP": "BTC/USDT:USDT"}
    funding = data.funding_rate("BTC-USDT-PERP")
    assert funding.rate == Decimal("-0.000125") and funding.mark_price == Decimal(50000)
    assert funding.next_funding_at is not None
    assert funding.next_funding_at.timestamp() % (8 * 3600) == 0
