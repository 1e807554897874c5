"""Value objects: sides, instruments and exact decimal parsing."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from domain.errors import InvalidCommand


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


class OrderType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"


class Mode(StrEnum):
    BACKTEST = "backtest"
    PAPER = "paper"
    SHADOW = "shadow"
    LIVE = "live"


def to_decimal(value: object, name: str) -> Decimal:
    """Exact decimal from a string/int/Decimal; floats and non-finite values are refused."""
    if isinstance(value, float | bool):
        raise InvalidCommand(f"{name} must be a decimal string, not {type(value).__name__}")
    try:
        result = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidCommand(f"{name} is not a number: {value!r}") from None
    if not result.is_finite():
        raise InvalidCommand(f"{name} must be finite, got {value!r}")
    return result


def is_multiple(value: Decimal, step: Decimal) -> bool:
    return step > 0 and value % step == 0


@dataclass(frozen=True)
class Instrument:
    """A tradable market with the venue's increments; quantities in base, prices in quote."""

    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    lot_size: Decimal
    min_notional: Decimal

    def check_order(self, quantity: Decimal, price: Decimal | None) -> None:
        """Refuse a quantity/price the venue would refuse, before anything is approved."""
        if quantity <= 0:
            raise InvalidCommand(f"quantity must be positive, got {quantity}")
        if not is_multiple(quantity, self.lot_size):
            raise InvalidCommand(
                f"quantity {quantity} is not a multiple of the lot size {self.lot_size} "
                f"of {self.symbol}"
            )
        if price is None:
            return
        if price <= 0:
            raise InvalidCommand(f"price must be positive, got {price}")
        if not is_multiple(price, self.tick_size):
            raise InvalidCommand(
                f"price {price} is not a multiple of the tick size {self.tick_size} "
                f"of {self.symbol}"
            )
        if quantity * price < self.min_notional:
            raise InvalidCommand(
                f"notional {quantity * price} is below the minimum {self.min_notional} "
                f"of {self.symbol}"
            )


class InstrumentCatalog:
    """The instruments the system knows; anything else is bad input."""

    def __init__(self, instruments: list[Instrument]) -> None:
        self._by_symbol = {i.symbol: i for i in instruments}

    def get(self, symbol: str) -> Instrument:
        try:
            return self._by_symbol[symbol]
        except KeyError:
            raise InvalidCommand(f"unknown instrument {symbol!r}") from None

    def symbols(self) -> list[str]:
        return sorted(self._by_symbol)
