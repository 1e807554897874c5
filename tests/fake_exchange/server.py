"""A Binance-compatible REST subset on 127.0.0.1, for driving the real ccxt client.

Responses are built from the real samples in tests/fixtures (see PROVENANCE.md there):
each keeps exactly the sample's keys and value types, with this venue's state written in
the sample's number formats. Requests are authenticated like Binance's (X-MBX-APIKEY,
HMAC-SHA256 `signature` over the query, `timestamp` within `recvWindow`).

Faults are injected per endpoint and consumed in order: a request stuck past the client's
timeout (never processed), a response lost after the request was processed, 429 and 5xx
answers (optionally after processing, as Binance warns a 5xx may hide a success),
malformed JSON, a connection reset.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlparse

from tests.fake_exchange.book import FIXTURES, Book, FakeVenue, Market, Order, Trade, VenueError
from tests.fake_exchange.market_feed import KlineFeed, depth, klines, premium_index, ticker_24hr

ZERO = Decimal(0)
API_KEY = "fake-api-key"
SECRET = "fake-api-secret-0123456789abcdef0123456789abcdef"
_SAMPLES: dict[str, Any] = json.loads((FIXTURES / "ccxt_binance" / "responses.json").read_text())
_DOCS = FIXTURES / "binance_api_docs"


def sample(venue: str, name: str) -> Any:
    """The recorded response body (first element of a list response)."""
    body = _SAMPLES[venue][name]["httpResponse"]
    return body[0] if isinstance(body, list) else body


def doc_sample(name: str) -> Any:
    return json.loads((_DOCS / f"{name}.json").read_text())


def shaped(template: dict[str, Any], **values: Any) -> dict[str, Any]:
    """The template's keys in its order and with its value types, holding our values."""
    unknown = set(values) - set(template)
    if unknown:
        raise KeyError(f"not in the recorded response: {sorted(unknown)}")
    out = copy.deepcopy(template)
    for key, value in values.items():
        kind = type(template[key])
        if kind is int and not isinstance(value, bool):
            out[key] = int(value)
        elif kind is str and not isinstance(value, str):
            out[key] = str(value)
        else:
            out[key] = value
    return out


def dec(value: Decimal, places: int) -> str:
    return f"{value:.{places}f}"


@dataclass
class Fault:
    """What to do to the next `times` requests matching method and path."""

    kind: str  # stall | lose_response | status | malformed | reset
    path: str
    method: str | None = None
    times: int = 1
    seconds: float = 0.0
    status: int = 0
    body: str = ""
    process: bool = False  # for `status`: process the request before answering badly
    # `lose_response` and `malformed` always process the request first.


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    params: dict[str, str]


@dataclass
class FakeBinance:
    """The server's state and the control surface tests use."""

    venue: FakeVenue
    api_key: str = API_KEY
    secret: str = SECRET
    faults: list[Fault] = field(default_factory=list)
    requests: list[Seen] = field(default_factory=list)
    unhandled: list[str] = field(default_factory=list)
    base_url: str = ""
    market_data: KlineFeed = field(default_factory=KlineFeed)  # public klines/ticker/depth

    # --- control ----------------------------------------------------------------------------
    def inject(self, fault: Fault) -> None:
        """Arm a copy: the same Fault may parametrize several tests."""
        with self.venue.lock:
            self.faults.append(dataclasses.replace(fault))

    def set_price(self, symbol: str, price: str) -> None:
        with self.venue.lock:
            self.venue.prices[symbol] = Decimal(price)

    def fill(
        self, client_order_id: str, quantity: str, price: str | None = None, venue: str = "spot"
    ) -> Trade:
        with self.venue.lock:
            return self.venue.fill(
                venue, client_order_id, Decimal(quantity), None if price is None else Decimal(price)
            )

    def foreign_order(
        self, symbol: str, side: str, quantity: str, price: str | None = None, venue: str = "spot"
    ) -> Order:
        with self.venue.lock:
            return self.venue.foreign_order(
                venue, symbol, side, Decimal(quantity), None if price is None else Decimal(price)
            )

    def cancel(self, client_order_id: str, symbol: str = "BTCUSDT", venue: str = "spot") -> Order:
        """Someone cancels the order at the venue (the web UI), behind our back."""
        with self.venue.lock:
            return self.venue.cancel(venue, symbol, None, client_order_id)

    def drift(self, asset: str, delta: str, venue: str = "spot") -> None:
        with self.venue.lock:
            self.venue.drift(venue, asset, Decimal(delta))

    def orders(self, venue: str = "spot") -> list[Order]:
        with self.venue.lock:
            return list(self.venue.orders[venue])

    def trades(self, venue: str = "spot") -> list[Trade]:
        with self.venue.lock:
            return list(self.venue.trades[venue])

    def book(self, venue: str = "spot") -> Book:
        return self.venue.books[venue]

    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if r.method == method and r.path == path)

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.venue.lock:
            for fault in self.faults:
                if fault.path == path and fault.method in (None, method) and fault.times > 0:
                    fault.times -= 1
                    if fault.times == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    # --- requests ---------------------------------------------------------------------------
    def authenticate(self, headers: Any, query: str, params: dict[str, str]) -> None:
        if headers.get("X-MBX-APIKEY") != self.api_key:
            raise VenueError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        unsigned, _, signature = query.rpartition("&signature=")
        expected = hmac.new(self.secret.encode(), unsigned.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature, expected):
            raise VenueError(400, -1022, "Signature for this request is not valid.")
        window = int(params.get("recvWindow", "5000"))
        if abs(self.venue.now_ms() - int(params.get("timestamp", "0"))) > window:
            raise VenueError(400, -1021, "Timestamp for this request is outside of the recvWindow.")

    def route(self, method: str, path: str, params: dict[str, str]) -> Any:
        handler = _ROUTES.get((method, path))
        if handler is None:
            self.unhandled.append(f"{method} {path}")
            raise VenueError(404, -1, f"fake exchange has no {method} {path}")
        with self.venue.lock:
            return handler(self, params)


# --- responses -----------------------------------------------------------------------------
def _spot_order(fake: FakeBinance, order: Order) -> dict[str, Any]:
    return shaped(
        sample("spot", "order"),
        symbol=order.symbol,
        orderId=order.order_id,
        clientOrderId=order.client_order_id,
        price=dec(order.price, 8),
        origQty=dec(order.orig_qty, 8),
        executedQty=dec(order.executed_qty, 8),
        cummulativeQuoteQty=dec(order.cumm_quote, 8),
        status=order.status,
        timeInForce=order.time_in_force,
        type=order.type,
        side=order.side,
        stopPrice=dec(ZERO, 8),
        icebergQty=dec(ZERO, 8),
        time=order.time,
        updateTime=order.update_time,
        workingTime=order.time,
        origQuoteOrderQty=dec(ZERO, 8),
        selfTradePreventionMode="NONE",
    )


def _spot_new_order(fake: FakeBinance, order: Order, trades: list[Trade]) -> dict[str, Any]:
    fill_template = doc_sample("new_order_full_response")["fills"][0]
    fills = [
        shaped(
            fill_template,
            price=dec(t.price, 8),
            qty=dec(t.qty, 8),
            commission=dec(t.commission, 8),
            commissionAsset=t.commission_asset,
            tradeId=t.trade_id,
        )
        for t in trades
    ]
    return shaped(
        sample("spot", "order_new"),
        symbol=order.symbol,
        orderId=order.order_id,
        clientOrderId=order.client_order_id,
        transactTime=order.time,
        price=dec(order.price, 8),
        origQty=dec(order.orig_qty, 8),
        executedQty=dec(order.executed_qty, 8),
        origQuoteOrderQty=dec(ZERO, 8),
        cummulativeQuoteQty=dec(order.cumm_quote, 8),
        status=order.status,
        timeInForce=order.time_in_force,
        type=order.type,
        side=order.side,
        workingTime=order.time,
        icebergQty=dec(ZERO, 8),
        fills=fills,
        selfTradePreventionMode="NONE",
    )


def _spot_trade(trade: Trade) -> dict[str, Any]:
    return shaped(
        sample("spot", "my_trades"),
        symbol=trade.symbol,
        id=trade.trade_id,
        orderId=trade.order_id,
        price=dec(trade.price, 8),
        qty=dec(trade.qty, 8),
        quoteQty=dec(trade.price * trade.qty, 8),
        commission=dec(trade.commission, 8),
        commissionAsset=trade.commission_asset,
        time=trade.time,
        isBuyer=trade.side == "BUY",
        isMaker=trade.is_maker,
        isBestMatch=True,
    )


def _perp_places(market: Market) -> tuple[int, int]:
    return int(market.info["pricePrecision"]), int(market.info["quantityPrecision"])


def _perp_order(fake: FakeBinance, order: Order, *, new: bool = False) -> dict[str, Any]:
    market = fake.venue.markets["usdm"][order.symbol]
    price_places, qty_places = _perp_places(market)
    average = order.cumm_quote / order.executed_qty if order.executed_qty else ZERO
    values: dict[str, Any] = dict(
        orderId=order.order_id,
        symbol=order.symbol,
        status=order.status,
        clientOrderId=order.client_order_id,
        price=dec(order.price, price_places),
        avgPrice=dec(average, 5),
        origQty=dec(order.orig_qty, qty_places),
        executedQty=dec(order.executed_qty, qty_places),
        cumQuote=dec(order.cumm_quote, 5),
        timeInForce=order.time_in_force,
        type=order.type,
        reduceOnly=order.reduce_only,
        closePosition=False,
        side=order.side,
        positionSide="BOTH",
        stopPrice=dec(ZERO, price_places),
        workingType="CONTRACT_PRICE",
        priceProtect=False,
        origType=order.type,
        priceMatch="NONE",
        selfTradePreventionMode="NONE",
        goodTillDate=0,
        updateTime=order.update_time,
    )
    if new:
        return shaped(
            sample("usdm", "order_new"), cumQty=dec(order.executed_qty, qty_places), **values
        )
    return shaped(sample("usdm", "order"), time=order.time, **values)


def _perp_trade(fake: FakeBinance, trade: Trade) -> dict[str, Any]:
    market = fake.venue.markets["usdm"][trade.symbol]
    price_places, qty_places = _perp_places(market)
    return shaped(
        sample("usdm", "user_trades"),
        symbol=trade.symbol,
        id=trade.trade_id,
        orderId=trade.order_id,
        side=trade.side,
        price=dec(trade.price, price_places),
        qty=dec(trade.qty, qty_places),
        realizedPnl=dec(trade.realized_pnl, 8),
        marginAsset=market.quote,
        quoteQty=dec(trade.price * trade.qty, 5),
        commission=dec(trade.commission, 8),
        commissionAsset=trade.commission_asset,
        time=trade.time,
        positionSide="BOTH",
        maker=trade.is_maker,
        buyer=trade.side == "BUY",
    )


# --- endpoints -----------------------------------------------------------------------------
def _exchange_info(venue: str) -> Callable[[FakeBinance, dict[str, str]], Any]:
    def handler(fake: FakeBinance, params: dict[str, str]) -> Any:
        top = doc_sample("exchange_info_response")
        body: dict[str, Any] = {
            "timezone": top["timezone"],
            "serverTime": fake.venue.now_ms(),
            "rateLimits": top["rateLimits"],
            "exchangeFilters": top["exchangeFilters"],
            "symbols": [m.info for m in fake.venue.markets[venue].values()],
        }
        return body

    return handler


def _time(fake: FakeBinance, params: dict[str, str]) -> Any:
    return shaped(doc_sample("server_time_response"), serverTime=fake.venue.now_ms())


def _venue_of(path_venue: str) -> str:
    return "spot" if path_venue == "api" else "usdm"


def _new_order(venue: str) -> Callable[[FakeBinance, dict[str, str]], Any]:
    def handler(fake: FakeBinance, params: dict[str, str]) -> Any:
        order, trades = fake.venue.new_order(venue, params)
        if venue == "spot":
            return _spot_new_order(fake, order, trades)
        return _perp_order(fake, order, new=True)

    return handler


def _get_order(venue: str) -> Callable[[FakeBinance, dict[str, str]], Any]:
    def handler(fake: FakeBinance, params: dict[str, str]) -> Any:
        market = fake.venue.market(venue, params.get("symbol"))
        order = fake.venue.find(
            venue, market.symbol, params.get("orderId"), params.get("origClientOrderId")
        )
        return _spot_order(fake, order) if venue == "spot" else _perp_order(fake, order)

    return handler


def _cancel_order(venue: str) -> Callable[[FakeBinance, dict[str, str]], Any]:
    def handler(fake: FakeBinance, params: dict[str, str]) -> Any:
        market = fake.venue.market(venue, params.get("symbol"))
        order = fake.venue.cancel(
            venue, market.symbol, params.get("orderId"), params.get("origClientOrderId")
        )
        if venue == "usdm":
            return _perp_order(fake, order)
        return shaped(
            doc_sample("cancel_order_response"),
            symbol=order.symbol,
            origClientOrderId=order.client_order_id,
            orderId=order.order_id,
            clientOrderId=params.get("newClientOrderId", f"cancel{order.order_id}"),
            transactTime=order.update_time,
            price=dec(order.price, 8),
            origQty=dec(order.orig_qty, 8),
            executedQty=dec(order.executed_qty, 8),
            cummulativeQuoteQty=dec(order.cumm_quote, 8),
            status=order.status,
            timeInForce=order.time_in_force,
            type=order.type,
            side=order.side,
        )

    return handler


def _open_orders(venue: str) -> Callable[[FakeBinance, dict[str, str]], Any]:
    def handler(fake: FakeBinance, params: dict[str, str]) -> Any:
        symbol = params.get("symbol")
        orders = [o for o in fake.venue.orders[venue] if o.is_open and symbol in (None, o.symbol)]
        if venue == "spot":
            return [_spot_order(fake, o) for o in orders]
        return [_perp_order(fake, o) for o in orders]

    return handler


def _my_trades(venue: str) -> Callable[[FakeBinance, dict[str, str]], Any]:
    def handler(fake: FakeBinance, params: dict[str, str]) -> Any:
        market = fake.venue.market(venue, params.get("symbol"))
        trades = [t for t in fake.venue.trades[venue] if t.symbol == market.symbol]
        if "orderId" in params:
            trades = [t for t in trades if str(t.order_id) == params["orderId"]]
        if "fromId" in params:
            trades = [t for t in trades if t.trade_id >= int(params["fromId"])]
        if "startTime" in params:
            trades = [t for t in trades if t.time >= int(params["startTime"])]
        if "endTime" in params:
            trades = [t for t in trades if t.time <= int(params["endTime"])]
        trades = trades[: int(params.get("limit", "500"))]
        if venue == "spot":
            return [_spot_trade(t) for t in trades]
        return [_perp_trade(fake, t) for t in trades]

    return handler


def _spot_account(fake: FakeBinance, params: dict[str, str]) -> Any:
    book = fake.venue.books["spot"]
    template = sample("spot", "account")
    balance_template = template["balances"][0]
    assets = sorted(set(book.free) | set(book.locked))
    return shaped(
        template,
        updateTime=fake.venue.now_ms(),
        balances=[
            shaped(
                balance_template,
                asset=asset,
                free=dec(book.free.get(asset, ZERO), 8),
                locked=dec(book.locked.get(asset, ZERO), 8),
            )
            for asset in assets
        ],
    )


def _unrealized(fake: FakeBinance) -> Decimal:
    return sum(
        (
            p.amount * (fake.venue.prices[symbol] - p.entry)
            for symbol, p in fake.venue.books["usdm"].positions.items()
        ),
        ZERO,
    )


def _perp_account(fake: FakeBinance, params: dict[str, str]) -> Any:
    book = fake.venue.books["usdm"]
    template = sample("usdm", "account")
    unrealized = _unrealized(fake)
    wallet = book.wallet.get("USDT", ZERO)
    money = {
        "totalWalletBalance": dec(wallet, 8),
        "totalUnrealizedProfit": dec(unrealized, 8),
        "totalMarginBalance": dec(wallet + unrealized, 8),
        "totalCrossWalletBalance": dec(wallet, 8),
        "totalCrossUnPnl": dec(unrealized, 8),
        "availableBalance": dec(wallet + unrealized, 8),
        "maxWithdrawAmount": dec(wallet, 8),
    }
    assets = [
        shaped(
            template["assets"][0],
            asset=asset,
            walletBalance=dec(amount, 8),
            unrealizedProfit=dec(unrealized if asset == "USDT" else ZERO, 8),
            marginBalance=dec(amount + (unrealized if asset == "USDT" else ZERO), 8),
            maxWithdrawAmount=dec(amount, 8),
            crossWalletBalance=dec(amount, 8),
            crossUnPnl=dec(unrealized if asset == "USDT" else ZERO, 8),
            availableBalance=dec(amount, 8),
            updateTime=fake.venue.now_ms(),
        )
        for asset, amount in sorted(book.wallet.items())
    ]
    return shaped(template, updateTime=fake.venue.now_ms(), assets=assets, **money)


def _position_risk(fake: FakeBinance, params: dict[str, str]) -> Any:
    template = sample("usdm", "position_risk")
    out = []
    for symbol, p in sorted(fake.venue.books["usdm"].positions.items()):
        if p.amount == 0:
            continue
        mark = fake.venue.prices[symbol]
        out.append(
            shaped(
                template,
                symbol=symbol,
                positionAmt=dec(p.amount, 3),
                entryPrice=dec(p.entry, 8),
                breakEvenPrice=dec(p.entry, 8),
                markPrice=dec(mark, 8),
                unRealizedProfit=dec(p.amount * (mark - p.entry), 8),
                liquidationPrice="0",
                notional=dec(p.amount * mark, 8),
                initialMargin=dec(abs(p.amount * mark) / 20, 8),
                maintMargin=dec(abs(p.amount * mark) * Decimal("0.004"), 8),
                positionInitialMargin=dec(abs(p.amount * mark) / 20, 8),
                updateTime=fake.venue.now_ms(),
            )
        )
    return out


def _leverage_brackets(fake: FakeBinance, params: dict[str, str]) -> Any:
    """Binance documents this shape; the tiers are ccxt's recorded ones (responses.json)."""
    recorded = _SAMPLES["usdm"]["leverage_brackets"]
    out = []
    for symbol, tiers in recorded.items():
        if not isinstance(tiers, list):
            continue  # the description
        brackets = []
        for i, (floor, ratio) in enumerate(tiers):
            cap = tiers[i + 1][0] if i + 1 < len(tiers) else "500000000"
            brackets.append(
                {
                    "bracket": i + 1,
                    "initialLeverage": 125,
                    "notionalCap": int(cap),
                    "notionalFloor": int(floor),
                    "maintMarginRatio": float(ratio),  # a JSON number on the wire
                    "cum": 0.0,
                }
            )
        out.append({"symbol": symbol.split("/")[0] + "USDT", "brackets": brackets})
    return out


_PUBLIC = {
    "/api/v3/ping",
    "/api/v3/time",
    "/api/v3/exchangeInfo",
    "/api/v3/klines",
    "/api/v3/ticker/24hr",
    "/api/v3/depth",
    "/fapi/v1/ping",
    "/fapi/v1/time",
    "/fapi/v1/exchangeInfo",
    "/fapi/v1/premiumIndex",
}
_ROUTES: dict[tuple[str, str], Callable[[FakeBinance, dict[str, str]], Any]] = {
    ("GET", "/api/v3/ping"): lambda fake, params: {},
    ("GET", "/api/v3/time"): _time,
    ("GET", "/api/v3/exchangeInfo"): _exchange_info("spot"),
    ("POST", "/api/v3/order"): _new_order("spot"),
    ("GET", "/api/v3/order"): _get_order("spot"),
    ("DELETE", "/api/v3/order"): _cancel_order("spot"),
    ("GET", "/api/v3/openOrders"): _open_orders("spot"),
    ("GET", "/api/v3/myTrades"): _my_trades("spot"),
    ("GET", "/api/v3/account"): _spot_account,
    ("GET", "/api/v3/klines"): lambda f, p: klines(f.market_data, p, f.venue.now_ms()),
    ("GET", "/api/v3/ticker/24hr"): lambda f, p: ticker_24hr(f.market_data, p, f.venue.now_ms()),
    ("GET", "/api/v3/depth"): lambda f, p: depth(f.market_data, p, f.venue.now_ms()),
    ("GET", "/fapi/v1/ping"): lambda fake, params: {},
    ("GET", "/fapi/v1/time"): _time,
    ("GET", "/fapi/v1/exchangeInfo"): _exchange_info("usdm"),
    ("POST", "/fapi/v1/order"): _new_order("usdm"),
    ("GET", "/fapi/v1/order"): _get_order("usdm"),
    ("DELETE", "/fapi/v1/order"): _cancel_order("usdm"),
    ("GET", "/fapi/v1/openOrders"): _open_orders("usdm"),
    ("GET", "/fapi/v1/userTrades"): _my_trades("usdm"),
    ("GET", "/fapi/v2/account"): _perp_account,
    ("GET", "/fapi/v3/account"): _perp_account,
    ("GET", "/fapi/v2/positionRisk"): _position_risk,
    ("GET", "/fapi/v3/positionRisk"): _position_risk,
    ("GET", "/fapi/v1/leverageBracket"): _leverage_brackets,
    ("GET", "/fapi/v1/premiumIndex"): lambda f, p: premium_index(
        f.market_data, p, f.venue.now_ms(), f.venue.prices["BTCUSDT"]
    ),
}


# --- HTTP ----------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        fake = self.server.fake
        url = urlparse(self.path)
        body = ""
        if method == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
        query = body if method == "POST" else url.query
        params = dict(parse_qsl(query, keep_blank_values=True))
        fake.requests.append(Seen(method, url.path, params))
        fault = fake._take_fault(method, url.path)
        if fault is not None and fault.kind == "reset":
            self._reset()
            return
        if fault is not None and fault.kind == "stall":  # never reaches the matching engine
            time.sleep(fault.seconds)
            self._reset()
            return
        process = fault is None or fault.kind in ("lose_response", "malformed") or fault.process
        status, payload = 200, None
        if process:
            try:
                if url.path not in _PUBLIC:
                    fake.authenticate(self.headers, query, params)
                payload = fake.route(method, url.path, params)
            except VenueError as error:
                status, payload = error.status, {"code": error.code, "msg": error.msg}
        if fault is not None and fault.kind == "lose_response":
            time.sleep(fault.seconds)
            self._reset()
            return
        if fault is not None and fault.kind == "status":
            self._send(
                fault.status, fault.body, {"Retry-After": "1"} if fault.status == 429 else {}
            )
            return
        text = json.dumps(payload, separators=(",", ":"))
        if fault is not None and fault.kind == "malformed":
            text = text[: max(1, len(text) // 2)]
        self._send(status, text, {})

    def _send(self, status: int, text: str, headers: dict[str, str]) -> None:
        data = text.encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up first
            pass

    def _reset(self) -> None:
        try:
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeBinance


@contextmanager
def running(
    *,
    balances: dict[str, str] | None = None,
    usdm_wallet: str = "10000",
    prices: dict[str, str] | None = None,
) -> Iterator[FakeBinance]:
    """Start the fake on a free port of 127.0.0.1 in a background thread."""
    venue = FakeVenue(
        balances={k: Decimal(v) for k, v in (balances or {"USDT": "100000"}).items()},
        usdm_wallet=Decimal(usdm_wallet),
        prices={
            k: Decimal(v)
            for k, v in (
                prices or {"BTCUSDT": "50000", "ETHUSDT": "3000", "ADAUSDT": "0.5", "LTCUSDT": "70"}
            ).items()
        },
        now_ms=lambda: int(time.time() * 1000),
    )
    fake = FakeBinance(venue)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = fake
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="fake-binance", daemon=True
    )
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
