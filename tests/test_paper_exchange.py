"""The paper venue: fills only on later bars, limits fill when crossed, volume caps fills."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from adapters.clock import SimulatedClock
from adapters.market_data_csv import CandleSeries, CsvMarketData
from adapters.paper_exchange import PaperConfig, PaperExchange
from adapters.settings import PROJECT_ROOT, load_catalog
from application.allocation import AllocationPolicy, intents, target_weights
from application.arbitration import adapt, arbitrate
from application.ports import Candle, OrderRequest
from domain.signals import LONG, SHORT, Signal
from domain.values import Side

T0 = datetime(2024, 1, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
CATALOG = load_catalog(PROJECT_ROOT / "config" / "instruments.toml")


def bar(n: int, o: str, h: str, lo: str, c: str, v: str = "10") -> Candle:
    return Candle(
        "BTC-USDT", T0 + n * MINUTE, Decimal(o), Decimal(h), Decimal(lo), Decimal(c), Decimal(v)
    )


def venue(*bars: Candle) -> tuple[PaperExchange, SimulatedClock]:
    market = CsvMarketData([CandleSeries("BTC-USDT", MINUTE, tuple(bars), ())])
    clock = SimulatedClock(T0 + MINUTE)  # the first bar has closed
    config = PaperConfig(half_spread=Decimal("0.001"), range_slippage=Decimal(0))
    return PaperExchange(CATALOG, market, clock, {"USDT": Decimal(100000)}, config), clock


def order(cid: str, side: str, qty: str, limit: str | None) -> OrderRequest:
    kind = "LIMIT" if limit else "MARKET"
    return OrderRequest(
        cid, "BTC-USDT", side, kind, Decimal(qty), Decimal(limit) if limit else None
    )


def test_nothing_fills_on_the_bar_the_order_was_decided_on() -> None:
    paper, clock = venue(bar(0, "100", "101", "99", "100"), bar(1, "100", "102", "98", "101"))
    paper.submit(order("a", "BUY", "0.1", "99.50"))
    assert paper.fills(None) == []  # bar 0 opened before the order existed
    clock.advance(60)
    [fill] = paper.fills(None)
    assert (fill.price, fill.quantity) == (Decimal("99.50"), Decimal("0.1"))  # maker at limit
    assert fill.fee == Decimal("0.0099500")


def test_limit_not_crossed_does_not_fill_and_market_pays_the_spread() -> None:
    paper, clock = venue(bar(0, "100", "100", "100", "100"), bar(1, "100", "101", "99.6", "100"))
    paper.submit(order("a", "BUY", "0.1", "99.50"))
    paper.submit(order("m", "BUY", "0.1", None))
    clock.advance(60)
    fills = paper.fills(None)
    assert [f.client_order_id for f in fills] == ["m"]
    assert fills[0].price == Decimal("100.10")  # open + 0.1 % half spread


def test_fills_are_capped_by_bar_volume_and_continue_next_bar() -> None:
    paper, clock = venue(
        bar(0, "100", "100", "100", "100"),
        bar(1, "100", "100", "99", "100", "3"),
        bar(2, "100", "100", "99", "100", "30"),
    )
    paper.submit(order("a", "BUY", "0.5", "100"))
    clock.advance(60)
    assert [f.quantity for f in paper.fills(None)] == [Decimal("0.3")]  # 10 % of 3
    assert paper.lookup("a", "BTC-USDT").status == "open"  # type: ignore[union-attr]
    clock.advance(60)
    assert [f.quantity for f in paper.fills(None)] == [Decimal("0.3"), Decimal("0.2")]
    assert paper.lookup("a", "BTC-USDT").status == "closed"  # type: ignore[union-attr]


def test_invalid_orders_and_uncovered_sells_are_rejected_and_resubmission_is_idempotent() -> None:
    paper, _ = venue(bar(0, "100", "100", "100", "100"), bar(1, "100", "100", "100", "100"))
    assert "lot size" in (paper.submit(order("x", "BUY", "0.000001", "100")).reason or "")
    assert "insufficient BTC" in (paper.submit(order("y", "SELL", "1", "100")).reason or "")
    first = paper.submit(order("z", "BUY", "0.1", "100"))
    again = paper.submit(order("z", "BUY", "0.1", "100"))
    assert first.exchange_order_id == again.exchange_order_id
    assert len([o for o in paper.orders.values() if o.status == "open"]) == 1


def signal(agent: str, direction: int, confidence: str, expected: str) -> Signal:
    return Signal(agent, "BTC-USDT", direction, Decimal(confidence), Decimal(expected), 12, "t")


def test_opposite_signals_net_out_and_weights_scale_them() -> None:
    signals = [signal("a", LONG, "1", "0.01"), signal("b", SHORT, "0.5", "0.02")]
    scores = arbitrate(
        signals,
        {"a": Decimal(1), "b": Decimal(1)},
        {"BTC-USDT": Decimal(1)},
        {"BTC-USDT": Decimal(1)},
    )
    assert scores == {"BTC-USDT": Decimal(0)}
    scores = arbitrate(
        signals,
        {"a": Decimal(2), "b": Decimal(1)},
        {"BTC-USDT": Decimal("0.5")},
        {"BTC-USDT": Decimal(1)},
    )
    assert scores == {"BTC-USDT": Decimal("0.005")}


def test_weights_adapt_within_bounds() -> None:
    weights = adapt({"a": Decimal(1), "b": Decimal(1)}, {"a": Decimal("0.5"), "b": Decimal("-1")})
    assert weights == {"a": Decimal(2), "b": Decimal("0.2")}


def test_allocation_caps_weights_and_respects_lots_dust_and_spot() -> None:
    policy = AllocationPolicy(
        max_weight=Decimal("0.095"), max_gross=Decimal("0.15"), max_order_notional=Decimal(5000)
    )
    targets = target_weights({"BTC-USDT": Decimal("0.01"), "ETH-USDT": Decimal("-0.01")}, policy)
    assert targets == {"BTC-USDT": Decimal("0.095"), "ETH-USDT": Decimal(0)}  # spot: no short
    plan = intents(
        targets,
        Decimal(100000),
        {"ETH-USDT": Decimal("0.5")},
        {"BTC-USDT": Decimal("43210.987"), "ETH-USDT": Decimal("2000")},
        CATALOG,
        policy,
    )
    buy, sell = plan
    assert (buy.side, buy.limit_price) == (Side.BUY, Decimal("43210.99"))
    assert buy.quantity == Decimal("0.11571")  # capped by 5000 notional, on the lot grid
    assert (sell.side, sell.quantity) == (Side.SELL, Decimal("0.5"))  # all of what is held
    dust = intents(
        {"BTC-USDT": Decimal("0.0001")},
        Decimal(100000),
        {},
        {"BTC-USDT": Decimal(40000)},
        CATALOG,
        policy,
    )
    assert dust == []  # 10 USDT is below 0.2 % of NAV
