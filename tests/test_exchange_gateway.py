"""The ccxt gateway driving the real ccxt client against the fake Binance over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from adapters.alerts import MemoryAlerts
from adapters.exchange.resilience import CLOSED, OPEN
from application.ports import ExchangeUnavailable, OrderRequest, SubmissionUnknown
from tests.fake_exchange import FakeBinance, Fault, running
from tests.fake_exchange.harness import SLOW, ManualClock, catalog, make_gateway

CID = "ais" + "0" * 31 + "1"
ORDER = "/api/v3/order"
ACCOUNT = "/api/v3/account"


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with running() as venue:
        yield venue
    assert venue.unhandled == []  # ccxt asked only for what the fake serves


def request(cid: str = CID, quantity: str = "0.01", price: str | None = "49000") -> OrderRequest:
    return OrderRequest(
        client_order_id=cid,
        instrument="BTC-USDT",
        side="BUY",
        order_type="MARKET" if price is None else "LIMIT",
        quantity=Decimal(quantity),
        limit_price=None if price is None else Decimal(price),
    )


def test_precision_and_limits_come_from_load_markets(fake: FakeBinance) -> None:
    spot = make_gateway(fake)
    rules = spot.rules()["BTC-USDT"]
    assert (rules.symbol, rules.tick_size, rules.lot_size) == (
        "BTC/USDT",
        Decimal("0.01"),
        Decimal("0.00001"),
    )
    assert rules.min_notional == Decimal(5) and rules.max_quantity == Decimal(9000)
    assert spot.rules()["ADA-USDT"].lot_size == Decimal("0.1")
    assert spot.check_catalog(catalog()) == []  # config/instruments.toml agrees with the venue

    perps = make_gateway(fake, venue="binanceusdm", market="swap")
    assert perps.rules()["BTC-USDT"].tick_size == Decimal("0.1")
    problems = perps.check_catalog(catalog())
    assert any("ADA-USDT: no market ADA/USDT:USDT" in p for p in problems)
    assert any(
        "BTC-USDT: tick size 0.01 is not a multiple of the venue's 0.1" in p for p in problems
    )
    assert any(
        "BTC-USDT: lot size 0.00001 is not a multiple of the venue's 0.001" in p for p in problems
    )


def test_submit_lookup_cancel_fills_and_snapshot(fake: FakeBinance) -> None:
    gateway = make_gateway(fake)
    resting = gateway.submit(request())
    assert (resting.status, resting.filled, resting.client_order_id) == ("open", Decimal(0), CID)
    assert gateway.lookup(CID, "BTC-USDT") == resting
    assert gateway.lookup("ais-nobody", "BTC-USDT") is None

    snapshot = gateway.snapshot()
    assert snapshot.balances["USDT"] == {"free": "99510", "used": "490", "total": "100000"}
    [open_order] = snapshot.open_orders
    assert open_order["client_order_id"] == CID and open_order["quantity"] == "0.01"
    assert open_order["instrument"] == "BTC-USDT" and open_order["side"] == "BUY"

    canceled = gateway.cancel(CID, "BTC-USDT")
    assert canceled is not None and canceled.status == "canceled"
    assert canceled.client_order_id == CID  # not the cancel request's own id Binance echoes
    again = gateway.cancel(CID, "BTC-USDT")  # idempotent: the venue says unknown, we look up
    assert again is not None and again.status == "canceled"

    taker = "ais" + "0" * 31 + "2"
    filled = gateway.submit(request(taker, price="50000"))
    assert (filled.status, filled.filled) == ("closed", Decimal("0.01"))
    [fill] = gateway.fills(None)
    assert fill.client_order_id == taker and fill.trade_id.startswith("BTCUSDT-")
    assert (fill.side, fill.quantity, fill.price, fill.fee) == (
        "BUY",
        Decimal("0.01"),
        Decimal(50000),
        Decimal("0.5"),
    )
    assert gateway.fills(fill.at) == [fill]  # `since` is inclusive; the caller dedups


def test_a_foreign_order_keeps_the_venue_symbol(fake: FakeBinance) -> None:
    fake.foreign_order("LTCUSDT", "BUY", "1", "60")
    [order] = make_gateway(fake).snapshot().open_orders
    assert order["client_order_id"].startswith("web_")
    assert (order["instrument"], order["symbol"]) == ("LTC/USDT", "LTC/USDT")


@pytest.mark.parametrize(
    "fault",
    [
        Fault("status", ACCOUNT, status=429, body='{"code":-1003,"msg":"Too many requests."}'),
        Fault("status", ACCOUNT, status=503, body="<html>503 Service Unavailable</html>"),
        Fault("status", ACCOUNT, status=500, body='{"code":-1001,"msg":"Internal error."}'),
        Fault("malformed", ACCOUNT),
        Fault("reset", ACCOUNT),
        Fault("stall", ACCOUNT, seconds=SLOW),
    ],
    ids=["429", "503", "500", "malformed-json", "connection-reset", "timeout"],
)
def test_transient_faults_on_reads_are_retried(fake: FakeBinance, fault: Fault) -> None:
    gateway = make_gateway(fake)
    fake.inject(fault)
    assert gateway.snapshot().balances["USDT"]["total"] == "100000"
    assert gateway.retried == 1 and fake.count("GET", ACCOUNT) == 2
    assert gateway.breaker.state == CLOSED and gateway.breaker.failures == 0


def test_a_persistent_fault_gives_up_with_exchange_unavailable(fake: FakeBinance) -> None:
    gateway = make_gateway(fake, retries=2)
    gateway.rules()
    fake.inject(Fault("status", ACCOUNT, status=503, times=3, body="down"))
    with pytest.raises(ExchangeUnavailable, match="after 3 attempts"):
        gateway.snapshot()
    assert fake.count("GET", ACCOUNT) == 3 and gateway.breaker.failures == 1


def test_breaker_opens_alerts_fails_fast_and_half_opens(fake: FakeBinance) -> None:
    clock = ManualClock()
    alerts = MemoryAlerts()
    gateway = make_gateway(fake, alerts, clock, retries=1, breaker_failures=3)
    gateway.rules()
    fake.inject(Fault("status", ACCOUNT, status=503, times=6, body="down"))
    for _ in range(3):
        with pytest.raises(ExchangeUnavailable):
            gateway.snapshot()
    assert gateway.breaker.state == OPEN
    [alert] = alerts.named("ExchangeCircuitOpen")
    assert alert.severity == "critical" and alert.labels["venue"] == "binance"
    sent = len(fake.requests)
    with pytest.raises(ExchangeUnavailable, match="circuit for binance is open"):
        gateway.snapshot()
    with pytest.raises(ExchangeUnavailable, match="circuit for binance is open"):
        gateway.submit(request())  # fail closed: no order leaves while the circuit is open
    assert len(fake.requests) == sent and fake.orders() == []

    clock.now += 5.0  # the cooldown: one probe goes through and closes the circuit
    assert gateway.snapshot().balances["USDT"]["total"] == "100000"
    assert gateway.breaker.state == CLOSED
    assert [a.name for a in alerts.sent] == ["ExchangeCircuitOpen", "ExchangeCircuitClosed"]


@pytest.mark.parametrize(
    ("fault", "placed"),
    [
        (Fault("lose_response", ORDER, method="POST", seconds=SLOW), True),
        (Fault("stall", ORDER, method="POST", seconds=SLOW), False),
        (Fault("status", ORDER, method="POST", status=502, body="bad gateway", process=True), True),
        (Fault("status", ORDER, method="POST", status=503, body="unavailable"), False),
        (Fault("malformed", ORDER, method="POST"), True),
        (Fault("reset", ORDER, method="POST"), False),
    ],
    ids=["response-lost", "request-stalled", "502-after-accepting", "503", "malformed", "reset"],
)
def test_create_order_is_never_retried_when_its_outcome_is_unknown(
    fake: FakeBinance, fault: Fault, placed: bool
) -> None:
    gateway = make_gateway(fake)
    gateway.rules()
    fake.inject(fault)
    with pytest.raises(SubmissionUnknown):
        gateway.submit(request())
    assert fake.count("POST", ORDER) == 1  # sent once, not retried blindly
    assert len(fake.orders()) == (1 if placed else 0)
    found = gateway.lookup(CID, "BTC-USDT")  # what the caller does next
    assert (found is not None) == placed


def test_a_resubmission_is_refused_as_duplicate_and_answered_with_the_original(
    fake: FakeBinance,
) -> None:
    gateway = make_gateway(fake)
    first = gateway.submit(request())
    second = gateway.submit(request())
    assert second == first and len(fake.orders()) == 1


def test_a_refused_order_comes_back_rejected_not_raised(fake: FakeBinance) -> None:
    gateway = make_gateway(fake)
    refused = gateway.submit(request(quantity="3", price="49000"))  # 147,000 USDT > balance
    assert refused.status == "rejected" and "insufficient balance" in (refused.reason or "")
    # ccxt would round 0.000015 down to 0.00001: never send other than what was approved
    lot = gateway.submit(request("ais" + "0" * 31 + "3", quantity="0.000015"))
    assert lot.status == "rejected" and "not on the venue's lot size" in (lot.reason or "")
    tiny = gateway.submit(request("ais" + "0" * 31 + "4", quantity="0.00001", price="100"))
    assert tiny.status == "rejected" and "NOTIONAL" in (tiny.reason or "")  # the venue's filter
    assert gateway.breaker.failures == 0 and fake.orders() == []


def test_usdm_perpetuals_round_trip(fake: FakeBinance) -> None:
    gateway = make_gateway(fake, venue="binanceusdm", market="swap")
    done = gateway.submit(request(quantity="0.01", price="50000"))
    assert done.status == "closed"
    [fill] = gateway.fills(None)
    assert (fill.quantity, fill.fee, fill.client_order_id) == (Decimal("0.01"), Decimal("0.2"), CID)
    snapshot = gateway.snapshot()
    assert snapshot.positions == [
        {
            "instrument": "BTC-USDT",
            "symbol": "BTC/USDT:USDT",
            "quantity": "0.01",
            "entry_price": "50000",
        }
    ]
    assert snapshot.balances["USDT"]["total"] == "9999.8"
