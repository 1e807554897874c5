"""Paper exchange: a simulated venue behind the same gateway port as the real ones.

Orders rest until a bar that opened after they were accepted (that is the
acknowledgement latency: nothing fills on the bar it was decided on). Market orders take
the next bar's open plus slippage; limit orders fill only when the bar trades through
the limit. Each bar fills at most a share of its volume, so large orders fill partially.
No randomness: the same bars and orders give the same fills.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from application.ports import (
    AccountSnapshot,
    Clock,
    ExchangeFill,
    ExchangeOrder,
    MarketData,
    OrderRequest,
)
from domain.errors import InvalidCommand
from domain.values import InstrumentCatalog

ZERO = Decimal(0)


@dataclass(frozen=True)
class PaperConfig:
    maker_fee: Decimal = Decimal("0.001")
    taker_fee: Decimal = Decimal("0.001")
    half_spread: Decimal = Decimal("0.0005")  # paid by takers on top of the open
    range_slippage: Decimal = Decimal("0.05")  # share of the bar's high-low range
    participation: Decimal = Decimal("0.1")  # max share of a bar's volume per order


@dataclass
class _Resting:
    request: OrderRequest
    exchange_order_id: str
    accepted_at: datetime
    filled: Decimal = ZERO
    status: str = "open"
    seen_bars: set[datetime] = field(default_factory=set)

    @property
    def remaining(self) -> Decimal:
        return self.request.quantity - self.filled

    def view(self, reason: str | None = None) -> ExchangeOrder:
        return ExchangeOrder(
            self.request.client_order_id, self.exchange_order_id, self.status, self.filled, reason
        )


class PaperExchange:
    venue = "paper"

    def __init__(
        self,
        catalog: InstrumentCatalog,
        market: MarketData,
        clock: Clock,
        balances: dict[str, Decimal],
        config: PaperConfig = PaperConfig(),
    ) -> None:
        self.catalog = catalog
        self.market = market
        self.clock = clock
        self.balances = dict(balances)
        self.config = config
        self.orders: dict[str, _Resting] = {}
        self.trades: list[ExchangeFill] = []

    # --- gateway port --------------------------------------------------------------------
    def submit(self, request: OrderRequest) -> ExchangeOrder:
        existing = self.orders.get(request.client_order_id)
        if existing is not None:  # resubmission: the client order id makes it idempotent
            return existing.view()
        reason = self._refusal(request)  # before the order itself reserves anything
        order = _Resting(request, f"paper-{len(self.orders) + 1}", self.clock())
        self.orders[request.client_order_id] = order
        if reason is not None:
            order.status = "rejected"
            return order.view(reason)
        return order.view()

    def cancel(self, client_order_id: str, instrument: str) -> ExchangeOrder | None:
        order = self.orders.get(client_order_id)
        if order is None:
            return None
        if order.status == "open":
            order.status = "canceled"
        return order.view()

    def lookup(self, client_order_id: str, instrument: str) -> ExchangeOrder | None:
        order = self.orders.get(client_order_id)
        return order.view() if order else None

    def fills(self, since: datetime | None) -> list[ExchangeFill]:
        self.match()
        return [f for f in self.trades if since is None or f.at >= since]

    def snapshot(self) -> AccountSnapshot:
        self.match()
        return AccountSnapshot(
            taken_at=self.clock(),
            balances={asset: {"total": str(v)} for asset, v in sorted(self.balances.items())},
            open_orders=[
                {
                    "client_order_id": o.request.client_order_id,
                    "instrument": o.request.instrument,
                    "side": o.request.side,
                    "quantity": str(o.request.quantity),
                    "filled": str(o.filled),
                }
                for o in self.orders.values()
                if o.status == "open"
            ],
        )

    # --- simulation ------------------------------------------------------------------------
    def _refusal(self, request: OrderRequest) -> str | None:
        try:
            spec = self.catalog.get(request.instrument)
            spec.check_order(request.quantity, request.limit_price)
        except InvalidCommand as exc:
            return str(exc)
        if request.side == "SELL":
            held = self.balances.get(spec.base, ZERO) - self._reserved(spec.base)
            if request.quantity > held:
                return f"insufficient {spec.base}: {held} available"
        return None

    def _reserved(self, base: str) -> Decimal:
        return sum(
            (
                o.remaining
                for o in self.orders.values()
                if o.status == "open"
                and o.request.side == "SELL"
                and self.catalog.get(o.request.instrument).base == base
            ),
            ZERO,
        )

    def match(self) -> None:
        """Fill resting orders against every bar that closed since they were accepted."""
        now = self.clock()
        for order in self.orders.values():
            if order.status != "open":
                continue
            bars = self.market.candles(order.request.instrument, now, limit=50)
            for bar in bars:
                if bar.opens_at < order.accepted_at or bar.opens_at in order.seen_bars:
                    continue
                order.seen_bars.add(bar.opens_at)
                self._fill_on(order, bar.open, bar.high, bar.low, bar.volume, now)
                if order.status != "open":
                    break

    def _fill_on(
        self,
        order: _Resting,
        open_: Decimal,
        high: Decimal,
        low: Decimal,
        volume: Decimal,
        now: datetime,
    ) -> None:
        request = order.request
        spec = self.catalog.get(request.instrument)
        sign = 1 if request.side == "BUY" else -1
        slip = self.config.half_spread + self.config.range_slippage * (high - low) / open_
        taker_price = open_ * (1 + sign * slip)
        limit = request.limit_price
        if limit is None:
            price, fee_rate = taker_price, self.config.taker_fee
        elif (sign > 0 and taker_price <= limit) or (sign < 0 and taker_price >= limit):
            price, fee_rate = taker_price, self.config.taker_fee  # marketable on arrival
        elif (sign > 0 and low <= limit) or (sign < 0 and high >= limit):
            price, fee_rate = limit, self.config.maker_fee  # the bar traded through the limit
        else:
            return
        price = (price / spec.tick_size).to_integral_value() * spec.tick_size
        cap = volume * self.config.participation
        quantity = min(order.remaining, cap)
        quantity = (quantity / spec.lot_size).to_integral_value(ROUND_DOWN) * spec.lot_size
        if quantity <= 0:
            return
        notional = quantity * price
        fee = (notional * fee_rate).quantize(Decimal("1e-12"))
        self.balances[spec.quote] = self.balances.get(spec.quote, ZERO) - sign * notional - fee
        self.balances[spec.base] = self.balances.get(spec.base, ZERO) + sign * quantity
        order.filled += quantity
        if order.remaining <= 0:
            order.status = "closed"
        self.trades.append(
            ExchangeFill(
                trade_id=f"{order.exchange_order_id}-{len(self.trades) + 1}",
                client_order_id=request.client_order_id,
                exchange_order_id=order.exchange_order_id,
                instrument=request.instrument,
                side=request.side,
                quantity=quantity,
                price=price,
                fee=fee,
                at=now,
            )
        )
