"""Value objects: sides, instruments and exact decimal parsing."""

from __future__ import annotations

import re
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


# No price, quantity, amount or limit comes near this; far larger values (1E+400 is a valid
# Decimal) would overflow the 28-digit context in a remainder against a lot size.
MAX_MAGNITUDE = Decimal(10) ** 18


def to_decimal(value: object, name: str) -> Decimal:
    """Exact decimal from a string/int/Decimal; floats, non-finite values and magnitudes
    of 1E+18 or more are refused; negative zero becomes zero (the sign means nothing)."""
    if isinstance(value, float | bool):
        raise InvalidCommand(f"{name} must be a decimal string, not {type(value).__name__}")
    try:
        result = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidCommand(f"{name} is not a number: {value!r}") from None
    if not result.is_finite():
        raise InvalidCommand(f"{name} must be finite, got {value!r}")
    if abs(result) >= MAX_MAGNITUDE:
        raise InvalidCommand(f"{name} is out of range (must be below 1E+18), got {value!r}")
    return result.copy_abs() if result.is_zero() else result


# C0 controls except tab, newline and carriage return, and DEL.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_text(value: str, name: str, max_len: int = 500) -> str:
    """Refuse text no store or terminal takes as it is: NUL (PostgreSQL text refuses it,
    so a projection would stop on the event), other control characters (terminal
    escapes in `ais status`), lone surrogates (not encodable as UTF-8), and text longer
    than `max_len` characters."""
    if len(value) > max_len:
        raise InvalidCommand(f"{name} is longer than {max_len} characters")
    if _CONTROL.search(value):
        raise InvalidCommand(f"{name} contains a control character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidCommand(f"{name} is not valid Unicode text (lone surrogate)") from None
    return value


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
