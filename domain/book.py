"""The RiskDesk's own book: cash, positions, marks and open orders, kept from approvals."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from domain.values import Side

ZERO = Decimal(0)


@dataclass(frozen=True)
class Mark:
    price: Decimal
    at: datetime


@dataclass(frozen=True)
class OpenOrder:
    instrument: str
    side: Side
    remaining: Decimal
    price: Decimal | None  # None for market orders: valued at the mark
    increasing: bool


def nav_of(cash: Decimal, positions: dict[str, Decimal], marks: dict[str, Mark]) -> Decimal | None:
    """Cash plus every held quantity at its mark; None when a held instrument has no mark."""
    total = cash
    for instrument, quantity in positions.items():
        if quantity == 0:
            continue
        mark = marks.get(instrument)
        if mark is None:
            return None
        total += quantity * mark.price
    return total


@dataclass(frozen=True)
class Book:
    """A read-only view for the guards; NAV is None when a held instrument has no mark.

    Frozen and built from copies, so what the guards derive from it (NAV, open quantity
    per instrument and side) is computed once, on construction, however many ask.
    """

    cash: Decimal
    positions: dict[str, Decimal]
    marks: dict[str, Mark]
    open_orders: dict[str, OpenOrder]
    high_water_mark: Decimal
    day_start_nav: Decimal
    _nav: Decimal | None = field(init=False, repr=False, compare=False)
    _pending: dict[tuple[str, Side], Decimal] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_nav", nav_of(self.cash, self.positions, self.marks))
        totals: dict[tuple[str, Side], Decimal] = {}
        for o in self.open_orders.values():
            key = (o.instrument, o.side)
            totals[key] = totals.get(key, ZERO) + o.remaining
        object.__setattr__(self, "_pending", totals)

    def position(self, instrument: str) -> Decimal:
        return self.positions.get(instrument, ZERO)

    def nav(self) -> Decimal | None:
        return self._nav

    def pending(self, instrument: str, side: Side) -> Decimal:
        return self._pending.get((instrument, side), ZERO)

    def worst_case_quantity(
        self, instrument: str, extra_buy: Decimal = ZERO, extra_sell: Decimal = ZERO
    ) -> Decimal:
        """Largest |position| if every open buy, or every open sell, filled."""
        held = self.position(instrument)
        long_case = held + self.pending(instrument, Side.BUY) + extra_buy
        short_case = held - self.pending(instrument, Side.SELL) - extra_sell
        return max(abs(long_case), abs(short_case))

    def worst_case_signed(
        self, instrument: str, extra_buy: Decimal = ZERO, extra_sell: Decimal = ZERO
    ) -> Decimal:
        """The worst-case position of the larger magnitude, with its sign (for net)."""
        held = self.position(instrument)
        long_case = held + self.pending(instrument, Side.BUY) + extra_buy
        short_case = held - self.pending(instrument, Side.SELL) - extra_sell
        return long_case if abs(long_case) >= abs(short_case) else short_case

    def instruments(self) -> set[str]:
        return set(self.positions) | {o.instrument for o in self.open_orders.values()}

    def reduces(self, instrument: str, side: Side, quantity: Decimal) -> bool:
        """True when the order, with every open order on its side, only shrinks |position|."""
        held = self.position(instrument)
        if held == 0 or side.sign == (1 if held > 0 else -1):
            return False
        return quantity + self.pending(instrument, side) <= abs(held)
