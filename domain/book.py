"""The RiskDesk's own book: cash, positions, marks and open orders, kept from approvals."""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class Book:
    """A read-only view for the guards; NAV is None when a held instrument has no mark."""

    cash: Decimal
    positions: dict[str, Decimal]
    marks: dict[str, Mark]
    open_orders: dict[str, OpenOrder]
    high_water_mark: Decimal
    day_start_nav: Decimal

    def position(self, instrument: str) -> Decimal:
        return self.positions.get(instrument, ZERO)

    def nav(self) -> Decimal | None:
        total = self.cash
        for instrument, quantity in self.positions.items():
            if quantity == 0:
                continue
            mark = self.marks.get(instrument)
            if mark is None:
                return None
            total += quantity * mark.price
        return total

    def pending(self, instrument: str, side: Side) -> Decimal:
        return sum(
            (
                o.remaining
                for o in self.open_orders.values()
                if o.instrument == instrument and o.side is side
            ),
            ZERO,
        )

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
