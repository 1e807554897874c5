"""The fake Binance answers in the recorded shapes and authenticates like the real one."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.fake_exchange import API_KEY, SECRET, FakeBinance, running
from tests.fake_exchange.server import doc_sample, sample


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with running() as venue:
        yield venue


def call(
    fake: FakeBinance,
    method: str,
    path: str,
    params: dict[str, str] | None = None,
    *,
    secret: str = SECRET,
    key: str = API_KEY,
    skew_ms: int = 0,
) -> tuple[int, Any]:
    query = urlencode(
        {
            **(params or {}),
            "timestamp": str(int(time.time() * 1000) + skew_ms),
            "recvWindow": "5000",
        }
    )
    signature = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    signed = f"{query}&signature={signature}"
    headers = {"X-MBX-APIKEY": key}
    url = f"{fake.base_url}{path}"
    if method == "POST":
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        response = httpx.post(url, content=signed, headers=headers)
    else:
        response = httpx.request(method, f"{url}?{signed}", headers=headers)
    return response.status_code, response.json()


def keys(value: Any) -> list[str]:
    return list(value) if isinstance(value, dict) else list(value[0])


def test_spot_responses_have_the_recorded_shapes(fake: FakeBinance) -> None:
    status, new = call(
        fake,
        "POST",
        "/api/v3/order",
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "MARKET",
            "quantity": "0.01",
            "newClientOrderId": "a1",
        },
    )
    assert status == 200 and keys(new) == keys(sample("spot", "order_new"))
    assert keys(new["fills"]) == keys(doc_sample("new_order_full_response")["fills"])
    assert new["origQty"] == "0.01000000" and new["status"] == "FILLED"
    _, order = call(fake, "GET", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": "a1"})
    assert keys(order) == keys(sample("spot", "order"))
    _, trades = call(fake, "GET", "/api/v3/myTrades", {"symbol": "BTCUSDT"})
    assert keys(trades) == keys(sample("spot", "my_trades"))
    _, account = call(fake, "GET", "/api/v3/account")
    assert keys(account) == keys(sample("spot", "account"))
    assert keys(account["balances"]) == keys(sample("spot", "account")["balances"])
    call(
        fake,
        "POST",
        "/api/v3/order",
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "quantity": "0.01",
            "price": "40000",
            "timeInForce": "GTC",
            "newClientOrderId": "a2",
        },
    )
    _, open_orders = call(fake, "GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"})
    assert keys(open_orders) == keys(sample("spot", "open_orders"))
    _, canceled = call(
        fake, "DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": "a2"}
    )
    assert keys(canceled) == keys(doc_sample("cancel_order_response"))
    assert canceled["status"] == "CANCELED"
    info = httpx.get(f"{fake.base_url}/api/v3/exchangeInfo").json()
    assert set(info) == set(doc_sample("exchange_info_response")) - {"sors"}


def test_usdm_responses_have_the_recorded_shapes(fake: FakeBinance) -> None:
    _, new = call(
        fake,
        "POST",
        "/fapi/v1/order",
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "MARKET",
            "quantity": "0.010",
            "newClientOrderId": "f1",
        },
    )
    assert keys(new) == keys(sample("usdm", "order_new"))
    _, order = call(fake, "GET", "/fapi/v1/order", {"symbol": "BTCUSDT", "origClientOrderId": "f1"})
    assert keys(order) == keys(sample("usdm", "order"))
    _, trades = call(fake, "GET", "/fapi/v1/userTrades", {"symbol": "BTCUSDT"})
    assert keys(trades) == keys(sample("usdm", "user_trades"))
    _, account = call(fake, "GET", "/fapi/v3/account")
    assert keys(account) == keys(sample("usdm", "account"))
    _, positions = call(fake, "GET", "/fapi/v3/positionRisk")
    assert keys(positions) == keys(sample("usdm", "position_risk"))
    assert positions[0]["positionAmt"] == "0.010"


def test_requests_are_authenticated_like_binance(fake: FakeBinance) -> None:
    assert call(fake, "GET", "/api/v3/account", key="other")[1]["code"] == -2015
    assert call(fake, "GET", "/api/v3/account", secret="wrong")[1]["code"] == -1022
    assert call(fake, "GET", "/api/v3/account", skew_ms=-60_000)[1]["code"] == -1021


def test_duplicate_client_order_ids_are_refused_only_while_open(fake: FakeBinance) -> None:
    resting = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "quantity": "0.01",
        "price": "40000",
        "timeInForce": "GTC",
        "newClientOrderId": "d1",
    }
    assert call(fake, "POST", "/api/v3/order", resting)[0] == 200
    status, body = call(fake, "POST", "/api/v3/order", resting)
    assert (status, body) == (400, {"code": -2010, "msg": "Duplicate order sent."})
    call(fake, "DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": "d1"})
    # As on Binance: once the first has ended, the same id is accepted again. So the
    # venue alone cannot make a resubmission safe; the order router never resubmits.
    assert call(fake, "POST", "/api/v3/order", resting)[0] == 200
    assert json.dumps(fake.orders()[0].client_order_id) == '"d1"'
