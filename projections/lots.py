"""Realized gains per lot, FIFO, from position fills: the tax/portfolio-tracker export.

Pure: fills in (log order), realized lots out. One FIFO queue per position (account and
instrument). A fill against the queue's direction closes the oldest open lots first; what
is left of it opens a new lot in its own direction, so shorts are supported: a sell with
nothing held opens a short lot, a later buy covers it. For a short lot `acquired_at` is
when it was opened (the sale) and `disposed_at` when it was covered; `proceeds` is what
the sale brought in and `cost_basis` what the cover cost.

Fees are split pro rata by quantity: the opening fill's fee over the lots it opens and
their partial closes, the closing fill's fee over the lots it closes (and any remainder it
opens), each share rounded half-even to 1e-12 of the quote currency. The last piece of a
fill takes the exact remainder of its fee, so the shares of one fee always sum to that
fee exactly. Money is `Decimal`, never float.

gain = proceeds - cost_basis - fees
"""

from __future__ import annotations

import csv
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import IO

from domain.values import Side

ZERO = Decimal(0)
FEE_STEP = Decimal("1e-12")  # pro rata fee shares are rounded to this; remainders stay exact

CSV_COLUMNS = (
    "instrument",
    "quantity",
    "acquired_at",
    "disposed_at",
    "cost_basis",
    "proceeds",
    "fees",
    "gain",
    "quote_currency",
)


@dataclass(frozen=True)
class LotFill:
    """One applied fill: `book` names the FIFO queue (the position id)."""

    book: str
    instrument: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal
    at: datetime


@dataclass(frozen=True)
class RealizedLot:
    instrument: str
    quantity: Decimal
    acquired_at: datetime
    disposed_at: datetime
    cost_basis: Decimal
    proceeds: Decimal
    fees: Decimal
    gain: Decimal
    long: bool


@dataclass
class _Open:
    quantity: Decimal  # remaining, positive
    price: Decimal
    fee: Decimal  # remaining share of the opening fee
    at: datetime
    long: bool


class _FeeSplitter:
    """Hands out a fill's fee by quantity; the last piece gets the exact remainder."""

    def __init__(self, quantity: Decimal, fee: Decimal) -> None:
        self.quantity = quantity
        self.fee = fee

    def take(self, quantity: Decimal) -> Decimal:
        share = self.fee if quantity >= self.quantity else _share(self.fee, quantity, self.quantity)
        self.quantity -= quantity
        self.fee -= share
        return share


def _share(fee: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    """`fee * part / whole` on a fixed 1e-12 grid (half-even), so sums stay exact."""
    return (fee * part / whole).quantize(FEE_STEP, rounding=ROUND_HALF_EVEN)


def _check(fill: LotFill) -> None:
    if fill.quantity <= 0:
        raise ValueError(f"fill quantity must be positive, got {fill.quantity}")
    if fill.price <= 0:
        raise ValueError(f"fill price must be positive, got {fill.price}")
    if fill.fee < 0:
        raise ValueError(f"fill fee must not be negative, got {fill.fee}")


def match_fifo(fills: Iterable[LotFill]) -> Iterator[RealizedLot]:
    """Realized lots in the order they were closed."""
    books: dict[str, deque[_Open]] = {}
    for fill in fills:
        _check(fill)
        queue = books.setdefault(fill.book, deque())
        buying = fill.side is Side.BUY
        fees = _FeeSplitter(fill.quantity, fill.fee)
        left = fill.quantity
        while left > 0 and queue and queue[0].long != buying:
            lot = queue[0]
            take = min(left, lot.quantity)
            open_fee = lot.fee if take == lot.quantity else _share(lot.fee, take, lot.quantity)
            close_fee = fees.take(take)
            opened_value = take * lot.price
            closed_value = take * fill.price
            cost, proceeds = (
                (opened_value, closed_value) if lot.long else (closed_value, opened_value)
            )
            total_fees = open_fee + close_fee
            yield RealizedLot(
                instrument=fill.instrument,
                quantity=take,
                acquired_at=lot.at,
                disposed_at=fill.at,
                cost_basis=cost,
                proceeds=proceeds,
                fees=total_fees,
                gain=proceeds - cost - total_fees,
                long=lot.long,
            )
            lot.quantity -= take
            lot.fee -= open_fee
            left -= take
            if lot.quantity == 0:
                queue.popleft()
        if left > 0:
            queue.append(_Open(left, fill.price, fees.take(left), fill.at, buying))


def lots_for_year(fills: Iterable[LotFill], year: int | None) -> list[RealizedLot]:
    """Lots disposed of in `year` (all years if None); matching still sees every fill."""
    return [lot for lot in match_fifo(fills) if year is None or lot.disposed_at.year == year]


def quote_currency(instrument: str) -> str:
    """`BTC-USDT` / `BTC/USDT` -> `USDT`; the fallback when no catalog knows it."""
    for separator in ("-", "/"):
        if separator in instrument:
            return instrument.rsplit(separator, 1)[1]
    return ""


def write_csv(
    lots: Iterable[RealizedLot],
    out: IO[str],
    quote_of: Callable[[str], str] = quote_currency,
) -> int:
    """Write the lots as CSV (exact decimal strings, ISO-8601 times); returns the count."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for lot in lots:
        writer.writerow(
            (
                lot.instrument,
                _plain(lot.quantity),
                lot.acquired_at.isoformat(),
                lot.disposed_at.isoformat(),
                _plain(lot.cost_basis),
                _plain(lot.proceeds),
                _plain(lot.fees),
                _plain(lot.gain),
                quote_of(lot.instrument),
            )
        )
        count += 1
    return count


def _plain(value: Decimal) -> str:
    """Fixed-point text (no exponent), trailing zeros kept as computed."""
    text = format(value, "f")
    return "0" if text in ("-0", "") else text
