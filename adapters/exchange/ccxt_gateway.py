"""The exchange gateway on ccxt: one venue (spot or USDⓈ-M perpetuals), fail closed.

What ccxt gives: signing, URL routing, its own rate limiter, error mapping to exception
classes, market metadata (`load_markets`) and the unified order/trade/balance/position
structures. ccxt runs with `number = str`, so every amount reaches us as the venue's
decimal text and becomes a Decimal — no float touches money.

What this adapter adds: our own token bucket per venue, capped exponential backoff with
jitter for transient errors on idempotent calls only, a circuit breaker per venue (an
open circuit fails calls fast with ExchangeUnavailable and raises an alert), and the
rule that a create-order is never retried blindly: when its outcome is unknown it raises
SubmissionUnknown and the caller looks the order up by its client order id.
"""

from __future__ import annotations

import decimal
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlparse

import ccxt

from adapters.exchange.resilience import (
    CLOSED,
    OPEN,
    Backoff,
    CircuitBreaker,
    CircuitOpen,
    TokenBucket,
)
from application.ports import (
    AccountSnapshot,
    Alert,
    AlertSink,
    Clock,
    ExchangeFill,
    ExchangeOrder,
    ExchangeUnavailable,
    OrderRequest,
    SubmissionUnknown,
)
from domain.values import InstrumentCatalog

log = logging.getLogger(__name__)
T = TypeVar("T")
ZERO = Decimal(0)

# Retried on idempotent calls (reads, cancels): the request may not have arrived, or the
# answer was garbled. OperationFailed covers NetworkError (RequestTimeout, DDoSProtection,
# RateLimitExceeded, ExchangeNotAvailable, OnMaintenance, InvalidNonce), BadResponse and
# the venue's own "unknown error / server busy" codes.
TRANSIENT: tuple[type[Exception], ...] = (ccxt.OperationFailed,)
# Venue error codes ccxt raises as a plain ExchangeError although the venue documents them
# as "please try again" (Binance -1001 DISCONNECTED: "Internal error; unable to process
# your request. Please try again.").
_RETRY_CODES: dict[str, tuple[str, ...]] = {
    "binance": ('"code":-1001',),
    "binanceusdm": ('"code":-1001',),
}
# The venue is reachable but will not let us in: counts against the circuit too.
LOCKED_OUT: tuple[type[Exception], ...] = (
    ccxt.AuthenticationError,
    ccxt.PermissionDenied,
    ccxt.AccountSuspended,
)
# A create-order the venue definitely refused: nothing was placed.
REFUSED: tuple[type[Exception], ...] = (
    ccxt.InsufficientFunds,
    ccxt.InvalidOrder,
    ccxt.BadSymbol,
    ccxt.BadRequest,
    *LOCKED_OUT,
)
_DUPLICATE = "Duplicate order sent"

# Venue-specific ccxt options (the only per-venue code here besides the fee currency note).
_VENUE_OPTIONS: dict[str, dict[str, Any]] = {
    "binance": {
        "fetchMarkets": {"types": ["spot"]},
        "fetchCurrencies": False,  # a private sapi call we do not need
        "fetchMargins": False,
        "warnOnFetchOpenOrdersWithoutSymbol": False,
    },
    "binanceusdm": {
        "fetchMarkets": {"types": ["linear"]},
        "fetchCurrencies": False,
        "fetchMargins": False,
        "warnOnFetchOpenOrdersWithoutSymbol": False,
    },
}


class _DecimalIsolated:
    """Runs every ccxt method in a private decimal context.

    ccxt's `decimal_to_precision` sets the thread's context rounding to ROUND_HALF_UP and
    leaves it there, which would silently change every later Decimal division in the
    process (NAV ratios, drawdown) — and make a rebuild differ from a live projection.
    """

    def __init__(self, exchange: Any) -> None:
        self._exchange = exchange

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._exchange, name)
        if not callable(value):
            return value

        def isolated(*args: Any, **kwargs: Any) -> Any:
            with decimal.localcontext():
                return value(*args, **kwargs)

        return isolated


@dataclass(frozen=True)
class GatewayConfig:
    venue: str  # the ccxt exchange id: "binance", "binanceusdm", ...
    market: str = "spot"  # "spot" | "swap"
    api_key: str = ""
    secret: str = ""
    base_url: str | None = None  # replaces scheme and host of every API URL (tests, proxies)
    timeout_ms: int = 10_000
    recv_window_ms: int = 5_000
    ccxt_rate_limit_ms: int | None = None  # None: ccxt's own value for the venue
    requests_per_second: float = 10.0
    burst: int = 20
    retries: int = 3  # retries after the first attempt, idempotent calls only
    backoff_base_seconds: float = 0.2
    backoff_cap_seconds: float = 5.0
    breaker_failures: int = 5
    breaker_cooldown_seconds: float = 30.0
    trades_page: int = 500
    symbols: dict[str, str] = field(default_factory=dict)  # instrument → ccxt symbol


@dataclass(frozen=True)
class MarketRules:
    """What the venue accepts for one instrument, from load_markets."""

    instrument: str
    symbol: str
    tick_size: Decimal
    lot_size: Decimal
    min_quantity: Decimal | None
    max_quantity: Decimal | None
    min_notional: Decimal | None


def _dec(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    return Decimal(str(value))


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _refuse_malformed_json(exchange: Any) -> None:
    """ccxt hands an unparseable 2xx body on as text, which parses to an empty balance or
    an empty list; make it a BadResponse (transient: retried on reads, unknown on create)."""
    plain = exchange.on_rest_response

    def on_rest_response(
        code: Any,
        reason: Any,
        url: str,
        method: str,
        headers: Any,
        body: str,
        request_headers: Any,
        request_body: Any,
    ) -> str:
        text: str = plain(code, reason, url, method, headers, body, request_headers, request_body)
        if 200 <= int(code) < 300:
            try:
                json.loads(text)
            except ValueError:
                raise ccxt.BadResponse(
                    f"{exchange.id} {method} {url}: malformed JSON ({len(text)} bytes)"
                ) from None
        return text

    exchange.on_rest_response = on_rest_response


class CcxtGateway:
    """ExchangeGateway for one ccxt venue. Not thread-safe: one caller at a time."""

    def __init__(
        self,
        config: GatewayConfig,
        catalog: InstrumentCatalog,
        *,
        alerts: AlertSink,
        now: Clock = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if config.market not in ("spot", "swap"):
            raise ValueError(f"market must be spot or swap, got {config.market!r}")
        self.config = config
        self.venue = config.venue
        self.alerts = alerts
        self._now = now
        self._sleep = sleep
        self.exchange = _DecimalIsolated(self._build_exchange(config))
        self.symbols = {
            i: config.symbols.get(i) or self._default_symbol(catalog, i) for i in catalog.symbols()
        }
        self._instruments = {s: i for i, s in self.symbols.items()}
        self.limiter = TokenBucket(config.requests_per_second, config.burst, monotonic, sleep)
        self.backoff = Backoff(
            config.backoff_base_seconds, config.backoff_cap_seconds, rng or random.Random()
        )
        self.breaker = CircuitBreaker(
            config.venue,
            threshold=config.breaker_failures,
            cooldown=config.breaker_cooldown_seconds,
            clock=monotonic,
            on_change=self._circuit_changed,
        )
        self._client_ids: dict[str, str | None] = {}  # exchange order id → client order id
        self._rules: dict[str, MarketRules] | None = None
        self.retried = 0  # transient failures that were retried

    # --- construction -----------------------------------------------------------------------
    @staticmethod
    def _build_exchange(config: GatewayConfig) -> Any:
        try:
            klass = getattr(ccxt, config.venue)
        except AttributeError:
            raise ValueError(f"ccxt has no exchange {config.venue!r}") from None
        options: dict[str, Any] = {
            "defaultType": "spot" if config.market == "spot" else "swap",
            "adjustForTimeDifference": False,  # the clock is ours, not synced behind our back
            "recvWindow": config.recv_window_ms,
            **_VENUE_OPTIONS.get(config.venue, {}),
        }
        settings: dict[str, Any] = {
            "apiKey": config.api_key,
            "secret": config.secret,
            "timeout": config.timeout_ms,
            "enableRateLimit": True,
            "options": options,
        }
        if config.ccxt_rate_limit_ms is not None:
            settings["rateLimit"] = config.ccxt_rate_limit_ms
        exchange = klass(settings)
        exchange.number = str  # amounts as the venue's decimal text, never floats
        _refuse_malformed_json(exchange)
        if config.base_url:
            base = urlparse(config.base_url)
            api = exchange.urls["api"]
            for key, url in list(api.items()):
                if isinstance(url, str):
                    api[key] = (
                        urlparse(url)._replace(scheme=base.scheme, netloc=base.netloc).geturl()
                    )
        return exchange

    def _default_symbol(self, catalog: InstrumentCatalog, instrument: str) -> str:
        spec = catalog.get(instrument)
        if self.config.market == "spot":
            return f"{spec.base}/{spec.quote}"
        return f"{spec.base}/{spec.quote}:{spec.quote}"

    def _circuit_changed(self, old: str, new: str) -> None:
        labels = {"venue": self.venue, "from": old, "to": new}
        if new == OPEN:
            self.alerts.send(
                Alert(
                    "ExchangeCircuitOpen",
                    "critical",
                    f"{self.venue}: circuit open after {self.breaker.failures} consecutive "
                    "failures; orders are refused until a probe succeeds",
                    labels,
                )
            )
        elif new == CLOSED:
            self.alerts.send(
                Alert(
                    "ExchangeCircuitClosed",
                    "info",
                    f"{self.venue}: a probe succeeded; circuit closed",
                    labels,
                )
            )

    # --- the resilient call -----------------------------------------------------------------
    def _guard(self) -> None:
        try:
            self.breaker.before_call()
        except CircuitOpen as exc:
            raise ExchangeUnavailable(str(exc)) from None

    def _read(self, operation: str, call: Callable[[], T]) -> T:
        """An idempotent call: retried on transient errors, counted by the breaker."""
        self._guard()
        attempt = 0
        while True:
            self.limiter.acquire()
            try:
                result = call()
            except ccxt.BaseError as exc:
                if not self._transient(exc):
                    if isinstance(exc, LOCKED_OUT):
                        self.breaker.record_failure()
                        raise ExchangeUnavailable(f"{self.venue} {operation}: {exc}") from exc
                    self.breaker.record_success()  # the venue answered; the caller decides
                    raise
                if attempt >= self.config.retries:
                    self.breaker.record_failure()
                    raise ExchangeUnavailable(
                        f"{self.venue} {operation}: {type(exc).__name__} after "
                        f"{attempt + 1} attempts: {exc}"
                    ) from exc
                self.retried += 1
                self._sleep(self.backoff.delay(attempt))
                attempt += 1
                continue
            except Exception:  # not an answer we understand: count it, never stay half-open
                self.breaker.record_failure()
                raise
            self.breaker.record_success()
            return result

    def _transient(self, exc: Exception) -> bool:
        if isinstance(exc, TRANSIENT):
            return True
        text = str(exc)
        return any(code in text for code in _RETRY_CODES.get(self.venue, ()))

    # --- markets ----------------------------------------------------------------------------
    def rules(self) -> dict[str, MarketRules]:
        """Precision and limits per instrument, from the venue's load_markets."""
        if self._rules is None:
            markets = self._read("load_markets", lambda: self.exchange.load_markets())
            rules = {}
            for instrument, symbol in self.symbols.items():
                market = markets.get(symbol)
                if market is None:
                    continue
                limits = market.get("limits") or {}
                rules[instrument] = MarketRules(
                    instrument=instrument,
                    symbol=symbol,
                    tick_size=Decimal(str(market["precision"]["price"])),
                    lot_size=Decimal(str(market["precision"]["amount"])),
                    min_quantity=_dec((limits.get("amount") or {}).get("min")),
                    max_quantity=_dec((limits.get("amount") or {}).get("max")),
                    min_notional=_dec((limits.get("cost") or {}).get("min")),
                )
            self._rules = rules
        return self._rules

    def check_catalog(self, catalog: InstrumentCatalog) -> list[str]:
        """Where our instrument catalog would let through what the venue refuses."""
        problems = []
        rules = self.rules()
        for instrument in catalog.symbols():
            spec = catalog.get(instrument)
            venue = rules.get(instrument)
            if venue is None:
                problems.append(
                    f"{instrument}: no market {self.symbols[instrument]} at {self.venue}"
                )
                continue
            if spec.tick_size % venue.tick_size:
                problems.append(
                    f"{instrument}: tick size {spec.tick_size} is not a multiple of the "
                    f"venue's {_text(venue.tick_size)}"
                )
            if spec.lot_size % venue.lot_size:
                problems.append(
                    f"{instrument}: lot size {spec.lot_size} is not a multiple of the "
                    f"venue's {_text(venue.lot_size)}"
                )
            if venue.min_notional is not None and spec.min_notional < venue.min_notional:
                problems.append(
                    f"{instrument}: minimum notional {spec.min_notional} is below the "
                    f"venue's {_text(venue.min_notional)}"
                )
            if venue.min_quantity is not None and spec.lot_size < venue.min_quantity:
                problems.append(
                    f"{instrument}: lot size {spec.lot_size} is below the venue's minimum "
                    f"quantity {_text(venue.min_quantity)}"
                )
        return problems

    def _symbol(self, instrument: str) -> str:
        try:
            return self.symbols[instrument]
        except KeyError:
            raise ValueError(f"{self.venue}: no symbol for instrument {instrument!r}") from None

    # --- orders -----------------------------------------------------------------------------
    def submit(self, request: OrderRequest) -> ExchangeOrder:
        """Send once. Refused → a "rejected" order; outcome unknown → SubmissionUnknown."""
        symbol = self._symbol(request.instrument)
        self.rules()  # markets first: a failure here has sent nothing
        off_grid = self._off_grid(symbol, request)
        if off_grid is not None:  # ccxt would round it: the venue must get what was approved
            return ExchangeOrder(request.client_order_id, "", "rejected", ZERO, off_grid)
        self._guard()  # open circuit: ExchangeUnavailable, and nothing was sent
        self.limiter.acquire()
        params: dict[str, Any] = {"clientOrderId": request.client_order_id}
        if request.order_type == "LIMIT":
            params["timeInForce"] = "GTC"
        try:
            raw = self.exchange.create_order(
                symbol,
                request.order_type.lower(),
                request.side.lower(),
                str(request.quantity),
                None if request.limit_price is None else str(request.limit_price),
                params,
            )
        except REFUSED as exc:
            if _DUPLICATE in str(exc):  # it is already there: ours, by construction
                self.breaker.record_success()
                return self._known(request)
            if isinstance(exc, LOCKED_OUT):
                self.breaker.record_failure()
            else:
                self.breaker.record_success()
            return ExchangeOrder(request.client_order_id, "", "rejected", ZERO, str(exc))
        except Exception as exc:  # timeout, reset, 5xx, garbled answer: we cannot know
            if isinstance(exc, ccxt.BaseError) and not self._transient(exc):
                self.breaker.record_success()  # an answer, if not one we know
            else:
                self.breaker.record_failure()
            raise SubmissionUnknown(
                f"{self.venue} create order {request.client_order_id}: {type(exc).__name__}: {exc}"
            ) from exc
        self.breaker.record_success()
        return self._order(raw, request.client_order_id)

    def _off_grid(self, symbol: str, request: OrderRequest) -> str | None:
        try:
            amount = Decimal(self.exchange.amount_to_precision(symbol, str(request.quantity)))
            price = (
                None
                if request.limit_price is None
                else Decimal(self.exchange.price_to_precision(symbol, str(request.limit_price)))
            )
        except ccxt.BaseError as exc:
            return str(exc)
        if amount != request.quantity:
            return f"quantity {request.quantity} is not on the venue's lot size for {symbol}"
        if price is not None and price != request.limit_price:
            return f"price {request.limit_price} is not on the venue's tick size for {symbol}"
        return None

    def _known(self, request: OrderRequest) -> ExchangeOrder:
        try:
            found = self.lookup(request.client_order_id, request.instrument)
        except ExchangeUnavailable as exc:
            raise SubmissionUnknown(str(exc)) from exc
        if found is None:
            raise SubmissionUnknown(f"{request.client_order_id}: duplicate, yet not found")
        return found

    def _order(self, raw: dict[str, Any], client_order_id: str | None = None) -> ExchangeOrder:
        exchange_order_id = str(raw.get("id") or "")
        # The id we asked about wins: Binance's cancel answer carries the *cancel's* own
        # clientOrderId (the original is in origClientOrderId, which ccxt does not map).
        cid = client_order_id or raw.get("clientOrderId") or ""
        if exchange_order_id:
            self._client_ids[exchange_order_id] = cid or None
        return ExchangeOrder(
            client_order_id=cid,
            exchange_order_id=exchange_order_id,
            status=str(raw.get("status") or "open"),
            filled=_dec(raw.get("filled")) or ZERO,
        )

    def lookup(self, client_order_id: str, instrument: str) -> ExchangeOrder | None:
        symbol = self._symbol(instrument)
        try:
            raw = self._read(
                "fetch_order",
                lambda: self.exchange.fetch_order("", symbol, {"clientOrderId": client_order_id}),
            )
        except ccxt.OrderNotFound:
            return None
        except ccxt.BaseError as exc:
            raise ExchangeUnavailable(f"{self.venue} fetch_order: {exc}") from exc
        return self._order(raw, client_order_id)

    def cancel(self, client_order_id: str, instrument: str) -> ExchangeOrder | None:
        """Cancel by client order id (idempotent); the order as it ended, or None if unknown."""
        symbol = self._symbol(instrument)
        try:
            raw = self._read(
                "cancel_order",
                lambda: self.exchange.cancel_order("", symbol, {"clientOrderId": client_order_id}),
            )
        except ccxt.OrderNotFound:  # already ended (filled, canceled) or never there
            return self.lookup(client_order_id, instrument)
        except ccxt.BaseError as exc:
            raise ExchangeUnavailable(f"{self.venue} cancel_order: {exc}") from exc
        return self._order(raw, client_order_id)

    # --- fills ------------------------------------------------------------------------------
    def fills(self, since: datetime | None) -> list[ExchangeFill]:
        """Our trades since `since` (inclusive) on every instrument, once per trade id."""
        found: dict[str, ExchangeFill] = {}
        listed = self.rules()
        for instrument, symbol in sorted(self.symbols.items()):
            if instrument not in listed:
                continue
            cursor = None if since is None else _ms(since)
            while True:
                page = self._trades(symbol, cursor)
                fresh = 0
                for trade in page:
                    fill = self._fill(instrument, symbol, trade)
                    if fill.trade_id not in found:
                        found[fill.trade_id] = fill
                        fresh += 1
                if len(page) < self.config.trades_page or fresh == 0:
                    break
                cursor = max(int(t["timestamp"]) for t in page)
        return sorted(found.values(), key=lambda f: (f.at, f.trade_id))

    def _trades(self, symbol: str, since_ms: int | None) -> list[dict[str, Any]]:
        try:
            trades: list[dict[str, Any]] = self._read(
                "fetch_my_trades",
                lambda: self.exchange.fetch_my_trades(symbol, since_ms, self.config.trades_page),
            )
        except ccxt.BaseError as exc:
            raise ExchangeUnavailable(f"{self.venue} fetch_my_trades: {exc}") from exc
        return trades

    def _fill(self, instrument: str, symbol: str, trade: dict[str, Any]) -> ExchangeFill:
        market = self.exchange.market(symbol)
        exchange_order_id = str(trade.get("order") or "")
        price = Decimal(str(trade["price"]))
        fee = ZERO
        charged = trade.get("fee") or {}
        if charged.get("cost") is not None:
            cost = Decimal(str(charged["cost"]))
            if charged.get("currency") in (None, market["quote"]):
                fee = cost
            elif charged.get("currency") == market["base"]:
                fee = cost * price  # valued in quote; the base balance still differs by `cost`
            else:  # e.g. BNB fee discount: not in our quote currency, shows up in reconciliation
                log.warning(
                    "%s trade %s: fee in %s not converted",
                    self.venue,
                    trade["id"],
                    charged["currency"],
                )
        return ExchangeFill(
            trade_id=f"{market['id']}-{trade['id']}",  # Binance trade ids are per symbol
            client_order_id=self._client_id(exchange_order_id, symbol),
            exchange_order_id=exchange_order_id,
            instrument=instrument,
            side=str(trade["side"]).upper(),
            quantity=Decimal(str(trade["amount"])),
            price=price,
            fee=fee,
            at=datetime.fromtimestamp(int(trade["timestamp"]) / 1000, UTC),
        )

    def _client_id(self, exchange_order_id: str, symbol: str) -> str | None:
        """Trades name the venue's order id only; its client order id is looked up once."""
        if not exchange_order_id:
            return None
        if exchange_order_id not in self._client_ids:
            try:
                raw = self._read(
                    "fetch_order", lambda: self.exchange.fetch_order(exchange_order_id, symbol)
                )
            except ccxt.OrderNotFound:
                self._client_ids[exchange_order_id] = None
            except ccxt.BaseError as exc:
                raise ExchangeUnavailable(f"{self.venue} fetch_order: {exc}") from exc
            else:
                self._client_ids[exchange_order_id] = raw.get("clientOrderId") or None
        return self._client_ids[exchange_order_id]

    # --- account ----------------------------------------------------------------------------
    def snapshot(self) -> AccountSnapshot:
        """Balances, positions (swap) and every open order, as the venue returned them."""
        self.rules()
        try:
            balance = self._read("fetch_balance", lambda: self.exchange.fetch_balance())
            positions = (
                self._read("fetch_positions", lambda: self.exchange.fetch_positions())
                if self.config.market == "swap"
                else []
            )
            orders = self._read("fetch_open_orders", lambda: self.exchange.fetch_open_orders())
        except ccxt.BaseError as exc:
            raise ExchangeUnavailable(f"{self.venue} snapshot: {exc}") from exc
        return AccountSnapshot(
            taken_at=self._now(),
            balances=self._balances(balance),
            positions=[p for p in map(self._position, positions) if p is not None],
            open_orders=[self._open_order(o) for o in orders],
        )

    @staticmethod
    def _balances(balance: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for asset, total in sorted((balance.get("total") or {}).items()):
            amount = _dec(total)
            if amount is None or amount == 0:
                continue
            out[asset] = {
                "free": _text(_dec(balance["free"].get(asset))),
                "used": _text(_dec(balance["used"].get(asset))),
                "total": _text(amount),
            }
        return out

    def _position(self, raw: dict[str, Any]) -> dict[str, Any] | None:
        contracts = _dec(raw.get("contracts")) or ZERO
        if contracts == 0:
            return None
        size = contracts * (_dec(raw.get("contractSize")) or Decimal(1))
        signed = -size if raw.get("side") == "short" else size
        symbol = str(raw["symbol"])
        return {
            "instrument": self._instruments.get(symbol, symbol),
            "symbol": symbol,
            "quantity": _text(signed),
            "entry_price": _text(_dec(raw.get("entryPrice"))),
        }

    def _open_order(self, raw: dict[str, Any]) -> dict[str, Any]:
        symbol = str(raw.get("symbol"))
        order = self._order(raw)
        return {
            "client_order_id": order.client_order_id,
            "exchange_order_id": order.exchange_order_id,
            "instrument": self._instruments.get(symbol, symbol),
            "symbol": symbol,
            "side": str(raw.get("side") or "").upper(),
            "quantity": _text(_dec(raw.get("amount"))),
            "filled": _text(order.filled),
            "price": _text(_dec(raw.get("price"))),
            "status": order.status,
        }
