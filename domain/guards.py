"""Risk guards as pure functions: each looks at one thing and names itself when it says no."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from domain.book import ZERO, Book
from domain.limits import RiskLimits
from domain.values import Side

ACTIVE, REDUCING, HALTED = "ACTIVE", "REDUCING", "HALTED"


@dataclass(frozen=True)
class Rejection:
    guard: str
    observed: str
    limit: str
    reason: str
    engage_kill_switch: bool = False


@dataclass(frozen=True)
class OrderCheck:
    """Everything the order guards may look at; built by the RiskDesk from its state.

    Frozen, so what several guards derive from it (whether the order reduces the
    position, the instruments it touches) is computed once, on construction.
    """

    instrument: str
    side: Side
    quantity: Decimal
    limit_price: Decimal | None
    reduce_only: bool
    intent_digest: str
    now: datetime
    kill_state: str
    session_status: str | None
    limits: RiskLimits
    book: Book
    recent_orders: tuple[tuple[datetime, str], ...]
    reducing: bool = field(init=False, compare=False)
    # Every instrument the book touches, with this order's extra (buy, sell) on its own.
    per_instrument: dict[str, tuple[Decimal, Decimal]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        reducing = self.book.reduces(self.instrument, self.side, self.quantity)
        object.__setattr__(self, "reducing", reducing)
        extras = {self.instrument: self.extra()}
        instruments = self.book.instruments() | {self.instrument}
        per_instrument = {i: extras.get(i, (ZERO, ZERO)) for i in instruments}
        object.__setattr__(self, "per_instrument", per_instrument)

    @property
    def mark_price(self) -> Decimal | None:
        mark = self.book.marks.get(self.instrument)
        return mark.price if mark else None

    @property
    def reference_price(self) -> Decimal | None:
        return self.limit_price if self.limit_price is not None else self.mark_price

    def extra(self) -> tuple[Decimal, Decimal]:
        return (self.quantity, ZERO) if self.side is Side.BUY else (ZERO, self.quantity)


def _ratio(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.000001")))


def kill_switch(c: OrderCheck) -> Rejection | None:
    if c.kill_state == HALTED and not (c.reduce_only and c.reducing):
        return Rejection("kill_switch", HALTED, "reduce-only orders", "kill switch engaged")
    if c.kill_state == REDUCING and not c.reducing:
        return Rejection("kill_switch", REDUCING, "risk-reducing orders", "desk is reducing")
    return None


def session_active(c: OrderCheck) -> Rejection | None:
    if c.session_status != ACTIVE:
        return Rejection("session_active", str(c.session_status), ACTIVE, "session not active")
    return None


def instrument_allowed(c: OrderCheck) -> Rejection | None:
    if c.instrument not in c.limits.mandate:
        allowed = ",".join(sorted(c.limits.mandate)) or "none"
        return Rejection("instrument_allowed", c.instrument, allowed, "outside the mandate")
    return None


def max_order_quantity(c: OrderCheck) -> Rejection | None:
    limit = c.limits.mandate[c.instrument]
    if c.quantity > limit:
        return Rejection("max_order_quantity", str(c.quantity), str(limit), "order too large")
    return None


def stale_mark(c: OrderCheck) -> Rejection | None:
    mark = c.book.marks.get(c.instrument)
    limit = str(c.limits.max_mark_age_seconds)
    if mark is None:
        return Rejection("stale_mark", "no mark", limit, "no market price observed")
    delta = c.now - mark.at
    age = Decimal(delta.days * 86_400 + delta.seconds) + Decimal(delta.microseconds) / 10**6
    if age > c.limits.max_mark_age_seconds:
        return Rejection("stale_mark", str(age.normalize()), limit, "market price is stale")
    return None


def price_collar(c: OrderCheck) -> Rejection | None:
    mark = c.mark_price
    if c.limit_price is None or mark is None:
        return None
    deviation = abs(c.limit_price - mark) / mark
    if deviation > c.limits.price_collar:
        return Rejection(
            "price_collar",
            _ratio(deviation),
            str(c.limits.price_collar),
            f"limit {c.limit_price} too far from mark {mark}",
        )
    return None


def max_order_notional(c: OrderCheck) -> Rejection | None:
    price = c.reference_price
    assert price is not None  # stale_mark runs first and fails closed without a mark
    notional = c.quantity * price
    if notional > c.limits.max_order_notional:
        return Rejection(
            "max_order_notional",
            str(notional),
            str(c.limits.max_order_notional),
            "order notional too large",
        )
    return None


def duplicate_order(c: OrderCheck) -> Rejection | None:
    since = c.now - timedelta(seconds=c.limits.duplicate_window_seconds)
    if any(at > since and digest == c.intent_digest for at, digest in c.recent_orders):
        return Rejection(
            "duplicate_order",
            "same order within window",
            f"{c.limits.duplicate_window_seconds}s",
            "duplicate order",
        )
    return None


def order_rate(c: OrderCheck) -> Rejection | None:
    since = c.now - timedelta(seconds=c.limits.order_rate_window_seconds)
    count = sum(1 for at, _ in c.recent_orders if at > since)
    if count >= c.limits.order_rate_limit:
        return Rejection(
            "order_rate",
            str(count + 1),
            f"{c.limits.order_rate_limit}/{c.limits.order_rate_window_seconds}s",
            "too many orders in the window",
        )
    return None


def _nav_or_rejection(c: OrderCheck, guard: str) -> Decimal | Rejection:
    nav = c.book.nav()
    if nav is None or nav <= 0:
        return Rejection(guard, str(nav), "> 0", "NAV unknown or not positive")
    return nav


def daily_loss(c: OrderCheck) -> Rejection | None:
    nav = _nav_or_rejection(c, "daily_loss")
    if isinstance(nav, Rejection):
        return nav
    start = c.book.day_start_nav
    loss = (start - nav) / start if start > 0 else ZERO
    if loss > c.limits.daily_loss:
        return Rejection(
            "daily_loss",
            _ratio(loss),
            str(c.limits.daily_loss),
            "daily loss limit breached",
            engage_kill_switch=True,
        )
    return None


def max_drawdown(c: OrderCheck) -> Rejection | None:
    nav = _nav_or_rejection(c, "max_drawdown")
    if isinstance(nav, Rejection):
        return nav
    hwm = c.book.high_water_mark
    drawdown = 1 - nav / hwm if hwm > 0 else ZERO
    if drawdown > c.limits.max_drawdown:
        return Rejection(
            "max_drawdown",
            _ratio(drawdown),
            str(c.limits.max_drawdown),
            "drawdown from high-water mark too deep",
        )
    return None


def _price(c: OrderCheck, instrument: str) -> Decimal:
    mark = c.book.marks.get(instrument)
    return mark.price if mark else ZERO


def max_position_weight(c: OrderCheck) -> Rejection | None:
    nav = _nav_or_rejection(c, "max_position_weight")
    if isinstance(nav, Rejection):
        return nav
    quantity = c.book.worst_case_quantity(c.instrument, *c.extra())
    weight = quantity * _price(c, c.instrument) / nav
    if weight > c.limits.max_position_weight:
        return Rejection(
            "max_position_weight",
            _ratio(weight),
            str(c.limits.max_position_weight),
            f"{c.instrument} would be too large a share of NAV",
        )
    return None


def max_gross_leverage(c: OrderCheck) -> Rejection | None:
    nav = _nav_or_rejection(c, "max_gross_leverage")
    if isinstance(nav, Rejection):
        return nav
    gross = sum(
        (c.book.worst_case_quantity(i, *e) * _price(c, i) for i, e in c.per_instrument.items()),
        ZERO,
    )
    leverage = gross / nav
    if leverage > c.limits.max_gross_leverage:
        return Rejection(
            "max_gross_leverage",
            _ratio(leverage),
            str(c.limits.max_gross_leverage),
            "gross exposure too large",
        )
    return None


def max_net_exposure(c: OrderCheck) -> Rejection | None:
    nav = _nav_or_rejection(c, "max_net_exposure")
    if isinstance(nav, Rejection):
        return nav
    net = sum(
        (c.book.worst_case_signed(i, *e) * _price(c, i) for i, e in c.per_instrument.items()),
        ZERO,
    )
    ratio = abs(net) / nav
    if ratio > c.limits.max_net_exposure:
        return Rejection(
            "max_net_exposure",
            _ratio(ratio),
            str(c.limits.max_net_exposure),
            "net exposure too large",
        )
    return None


# Order matters: state and mandate first, then data freshness (fail closed before using a
# price), then the per-order sizes, then the portfolio-level limits.
ALWAYS: tuple[Callable[[OrderCheck], Rejection | None], ...] = (
    kill_switch,
    session_active,
    instrument_allowed,
    max_order_quantity,
    stale_mark,
    price_collar,
    max_order_notional,
    duplicate_order,
    order_rate,
)
# Only risk-increasing orders can breach these; a reducing order must stay possible.
INCREASING_ONLY: tuple[Callable[[OrderCheck], Rejection | None], ...] = (
    daily_loss,
    max_drawdown,
    max_position_weight,
    max_gross_leverage,
    max_net_exposure,
)


def check_order(c: OrderCheck) -> Rejection | None:
    """The first guard that says no, or None when every guard passes."""
    guards = ALWAYS if c.reducing else ALWAYS + INCREASING_ONLY
    for guard in guards:
        rejection = guard(c)
        if rejection is not None:
            return rejection
    return None
