"""The fake venue's state: markets, orders, trades, balances and USDⓈ-M positions.

Two books, as on Binance: `spot` (/api/v3) and `usdm` (/fapi). Matching is deliberately
simple and deterministic: a MARKET order, or a LIMIT order that crosses the last price,
fills in full at the last price (taker); other LIMIT orders rest until a test fills them
(maker). Fees are charged in the quote asset. All money is Decimal.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ZERO = Decimal(0)
OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")


class VenueError(Exception):
    """A Binance error answer: HTTP status, code and message, as the venue sends them."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(f"{code} {msg}")
        self.status = status
        self.code = code
        self.msg = msg


@dataclass(frozen=True)
class Market:
    venue: str
    symbol: str
    base: str
    quote: str
    tick: Decimal
    step: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal
    info: dict[str, Any]

    @staticmethod
    def from_info(venue: str, info: dict[str, Any]) -> Market:
        filters = {f["filterType"]: f for f in info["filters"]}
        lot = filters["LOT_SIZE"]
        notional = filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL") or {}
        return Market(
            venue=venue,
            symbol=info["symbol"],
            base=info["baseAsset"],
            quote=info["quoteAsset"],
            tick=Decimal(filters["PRICE_FILTER"]["tickSize"]),
            step=Decimal(lot["stepSize"]),
            min_qty=Decimal(lot["minQty"]),
            max_qty=Decimal(lot["maxQty"]),
            min_notional=Decimal(notional.get("minNotional") or notional.get("notional") or 0),
            info=info,
        )


@dataclass
class Order:
    venue: str
    symbol: str
    order_id: int
    client_order_id: str
    side: str  # BUY | SELL
    type: str  # MARKET | LIMIT
    price: Decimal  # 0 for market orders, as Binance reports it
    orig_qty: Decimal
    time: int
    update_time: int
    time_in_force: str = "GTC"
    executed_qty: Decimal = ZERO
    cumm_quote: Decimal = ZERO
    status: str = "NEW"
    reduce_only: bool = False
    via_api: bool = True

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True)
class Trade:
    venue: str
    symbol: str
    trade_id: int
    order_id: int
    side: str
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_maker: bool
    realized_pnl: Decimal = ZERO


@dataclass
class PerpPosition:
    amount: Decimal = ZERO  # signed
    entry: Decimal = ZERO


@dataclass
class Book:
    """Spot balances are free/locked per asset; the USDⓈ-M book has a wallet and positions."""

    free: dict[str, Decimal] = field(default_factory=dict)
    locked: dict[str, Decimal] = field(default_factory=dict)
    wallet: dict[str, Decimal] = field(default_factory=dict)
    positions: dict[str, PerpPosition] = field(default_factory=dict)


def load_markets() -> dict[str, dict[str, Market]]:
    doc = json.loads((FIXTURES / "ccxt_binance" / "markets.json").read_text())
    return {
        venue: {m["symbol"]: Market.from_info(venue, m) for m in doc[venue]}
        for venue in ("spot", "usdm")
    }


class FakeVenue:
    """The matching engine and accounts; every method runs under one lock."""

    TAKER = Decimal("0.001")
    MAKER = Decimal("0.001")
    PERP_TAKER = Decimal("0.0004")
    PERP_MAKER = Decimal("0.0002")

    def __init__(
        self,
        *,
        balances: dict[str, Decimal],
        usdm_wallet: Decimal,
        prices: dict[str, Decimal],
        now_ms: Callable[[], int],
    ) -> None:
        self.lock = threading.RLock()
        self.markets = load_markets()
        self.prices = dict(prices)  # symbol -> last price (shared by both books)
        self.now_ms = now_ms
        self.books = {
            "spot": Book(free=dict(balances)),
            "usdm": Book(wallet={"USDT": usdm_wallet}),
        }
        self.orders: dict[str, list[Order]] = {"spot": [], "usdm": []}
        self.trades: dict[str, list[Trade]] = {"spot": [], "usdm": []}
        self._order_ids = itertools.count(3784695242)
        self._trade_ids = itertools.count(309520010)
        self._foreign_ids = itertools.count(1)

    # --- lookups ---------------------------------------------------------------------------
    def market(self, venue: str, symbol: str | None) -> Market:
        if symbol is None:
            raise VenueError(
                400,
                -1102,
                "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
            )
        try:
            return self.markets[venue][symbol]
        except KeyError:
            raise VenueError(400, -1121, "Invalid symbol.") from None

    def find(
        self, venue: str, symbol: str, order_id: str | None, client_order_id: str | None
    ) -> Order:
        for order in reversed(self.orders[venue]):
            if order.symbol != symbol:
                continue
            if client_order_id is not None and order.client_order_id == client_order_id:
                return order
            if order_id is not None and str(order.order_id) == order_id:
                return order
        raise VenueError(400, -2013, "Order does not exist.")

    # --- orders ------------------------------------------------------------------------------
    def new_order(self, venue: str, params: dict[str, str]) -> tuple[Order, list[Trade]]:
        market = self.market(venue, params.get("symbol"))
        side = params.get("side", "")
        kind = params.get("type", "")
        if side not in ("BUY", "SELL") or kind not in ("MARKET", "LIMIT"):
            raise VenueError(400, -1102, "Mandatory parameter 'side' or 'type' malformed.")
        quantity = Decimal(params.get("quantity", "0"))
        price = Decimal(params["price"]) if kind == "LIMIT" else ZERO
        client_id = params.get("newClientOrderId") or f"fake-{next(self._foreign_ids)}"
        if len(client_id) > 36:
            raise VenueError(
                400,
                -1100,
                "Illegal characters found in parameter 'newClientOrderId'; "
                "legal range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.",
            )
        if any(o.client_order_id == client_id and o.is_open for o in self.orders[venue]):
            raise VenueError(400, -2010, "Duplicate order sent.")
        self._check_filters(
            market, quantity, price if kind == "LIMIT" else self.prices[market.symbol]
        )
        last = self.prices[market.symbol]
        crosses = (
            kind == "MARKET"
            or (side == "BUY" and price >= last)
            or (side == "SELL" and price <= last)
        )
        if venue == "spot":
            self._check_funds(market, side, quantity, price if kind == "LIMIT" else last)
        now = self.now_ms()
        order = Order(
            venue=venue,
            symbol=market.symbol,
            order_id=next(self._order_ids),
            client_order_id=client_id,
            side=side,
            type=kind,
            price=price,
            orig_qty=quantity,
            time=now,
            update_time=now,
            time_in_force=params.get("timeInForce", "GTC"),
            reduce_only=params.get("reduceOnly") == "true",
        )
        self.orders[venue].append(order)
        if venue == "spot" and kind == "LIMIT":
            self._lock_funds(market, order, quantity)
        trades = [self._execute(order, quantity, last, maker=False)] if crosses else []
        return order, trades

    def _check_filters(self, market: Market, quantity: Decimal, price: Decimal) -> None:
        if quantity < market.min_qty or quantity > market.max_qty or quantity % market.step:
            raise VenueError(400, -1013, "Filter failure: LOT_SIZE")
        if price <= 0 or price % market.tick:
            raise VenueError(400, -1013, "Filter failure: PRICE_FILTER")
        if quantity * price < market.min_notional:
            kind = "NOTIONAL" if market.venue == "spot" else "MIN_NOTIONAL"
            raise VenueError(400, -1013, f"Filter failure: {kind}")

    def _check_funds(self, market: Market, side: str, quantity: Decimal, price: Decimal) -> None:
        book = self.books["spot"]
        need, asset = (
            (quantity * price * (1 + self.TAKER), market.quote)
            if side == "BUY"
            else (quantity, market.base)
        )
        if book.free.get(asset, ZERO) < need:
            raise VenueError(400, -2010, "Account has insufficient balance for requested action.")

    def _lock_funds(self, market: Market, order: Order, quantity: Decimal) -> None:
        book = self.books["spot"]
        asset, amount = (
            (market.quote, quantity * order.price)
            if order.side == "BUY"
            else (market.base, quantity)
        )
        book.free[asset] = book.free.get(asset, ZERO) - amount
        book.locked[asset] = book.locked.get(asset, ZERO) + amount

    def _unlock(self, market: Market, order: Order, quantity: Decimal) -> None:
        if order.type != "LIMIT" or order.venue != "spot":
            return
        book = self.books["spot"]
        asset, amount = (
            (market.quote, quantity * order.price)
            if order.side == "BUY"
            else (market.base, quantity)
        )
        book.locked[asset] = book.locked.get(asset, ZERO) - amount
        book.free[asset] = book.free.get(asset, ZERO) + amount

    def _execute(self, order: Order, quantity: Decimal, price: Decimal, *, maker: bool) -> Trade:
        market = self.markets[order.venue][order.symbol]
        quantity = min(quantity, order.remaining)
        notional = quantity * price
        sign = 1 if order.side == "BUY" else -1
        realized = ZERO
        if order.venue == "spot":
            rate = self.MAKER if maker else self.TAKER
            fee = (notional * rate).quantize(Decimal("1e-8"))
            self._unlock(market, order, quantity)
            book = self.books["spot"]
            book.free[market.base] = book.free.get(market.base, ZERO) + sign * quantity
            book.free[market.quote] = book.free.get(market.quote, ZERO) - sign * notional - fee
        else:
            rate = self.PERP_MAKER if maker else self.PERP_TAKER
            fee = (notional * rate).quantize(Decimal("1e-8"))
            realized = self._move_position(market, sign * quantity, price)
            wallet = self.books["usdm"].wallet
            wallet[market.quote] = wallet.get(market.quote, ZERO) + realized - fee
        order.executed_qty += quantity
        order.cumm_quote += notional
        order.status = "FILLED" if order.remaining == 0 else "PARTIALLY_FILLED"
        order.update_time = self.now_ms()
        trade = Trade(
            venue=order.venue,
            symbol=order.symbol,
            trade_id=next(self._trade_ids),
            order_id=order.order_id,
            side=order.side,
            price=price,
            qty=quantity,
            commission=fee,
            commission_asset=market.quote,
            time=order.update_time,
            is_maker=maker,
            realized_pnl=realized,
        )
        self.trades[order.venue].append(trade)
        return trade

    def _move_position(self, market: Market, signed: Decimal, price: Decimal) -> Decimal:
        """Average-cost one-way position; returns the realized P&L of the part closed."""
        position = self.books["usdm"].positions.setdefault(market.symbol, PerpPosition())
        held = position.amount
        if held == 0 or (held > 0) == (signed > 0):
            total = held + signed
            position.entry = (abs(held) * position.entry + abs(signed) * price) / abs(total)
            position.amount = total
            return ZERO
        closed = min(abs(signed), abs(held))
        realized = closed * (price - position.entry) * (1 if held > 0 else -1)
        position.amount = held + signed
        if position.amount == 0:
            position.entry = ZERO
        elif (position.amount > 0) != (held > 0):
            position.entry = price
        return realized

    def cancel(self, venue: str, symbol: str, order_id: str | None, client_id: str | None) -> Order:
        try:
            order = self.find(venue, symbol, order_id, client_id)
        except VenueError:
            raise VenueError(400, -2011, "Unknown order sent.") from None
        if not order.is_open:
            raise VenueError(400, -2011, "Unknown order sent.")
        self._unlock(self.markets[venue][symbol], order, order.remaining)
        order.status = "CANCELED"
        order.update_time = self.now_ms()
        return order

    # --- what tests ask the venue to do ------------------------------------------------------
    def fill(
        self, venue: str, client_order_id: str, quantity: Decimal, price: Decimal | None
    ) -> Trade:
        order = next(
            o for o in reversed(self.orders[venue]) if o.client_order_id == client_order_id
        )
        if not order.is_open:
            raise ValueError(f"order {client_order_id} is {order.status}")
        return self._execute(order, quantity, order.price if price is None else price, maker=True)

    def foreign_order(
        self, venue: str, symbol: str, side: str, quantity: Decimal, price: Decimal | None
    ) -> Order:
        """An order someone placed outside this system (the web UI, another bot)."""
        params = {"symbol": symbol, "side": side, "quantity": str(quantity)}
        if price is None:
            params["type"] = "MARKET"
        else:
            params.update(type="LIMIT", price=str(price))
        params["newClientOrderId"] = f"web_{next(self._foreign_ids)}"
        order, _ = self.new_order(venue, params)
        order.via_api = False
        return order

    def drift(self, venue: str, asset: str, delta: Decimal) -> None:
        book = self.books[venue]
        target = book.free if venue == "spot" else book.wallet
        target[asset] = target.get(asset, ZERO) + delta
