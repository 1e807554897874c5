"""Realized lots in the CSV layouts of portfolio trackers: generic, Koinly, CoinTracking.

`generic` is `projections.lots.write_csv` (one row per lot, gain included). A tracker
computes gains itself from trades, so `koinly` and `cointracking` write each lot as the
two trades that made it: the opening trade at `acquired_at` and the closing trade at
`disposed_at`. The leg that sold the base currency received the lot's proceeds, the leg
that bought it paid its cost basis (for a long lot the buy comes first, for a short lot
the sale), and the lot's whole fee is on the closing leg, so the tracker's FIFO over
these trades gives back the lot's gain. Amounts are exact decimal text, never floats;
times are UTC.

* Koinly universal CSV: Date, Sent Amount, Sent Currency, Received Amount, Received
  Currency, Fee Amount, Fee Currency, Net Worth Amount, Net Worth Currency, Label,
  Description, TxHash. Net worth is left to Koinly (it wants it in fiat; AIS quotes in
  whatever the instrument's quote currency is).
* CoinTracking CSV import: Type, Buy Amount, Buy Currency, Sell Amount, Sell Currency,
  Fee, Fee Currency, Exchange, Trade-Group, Comment, Date.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import IO

from projections.lots import ZERO, RealizedLot, _plain, quote_currency, write_csv

FORMATS = ("generic", "koinly", "cointracking")
EXCHANGE = "AIS"
KOINLY_COLUMNS = (
    "Date",
    "Sent Amount",
    "Sent Currency",
    "Received Amount",
    "Received Currency",
    "Fee Amount",
    "Fee Currency",
    "Net Worth Amount",
    "Net Worth Currency",
    "Label",
    "Description",
    "TxHash",
)
COINTRACKING_COLUMNS = (
    "Type",
    "Buy Amount",
    "Buy Currency",
    "Sell Amount",
    "Sell Currency",
    "Fee",
    "Fee Currency",
    "Exchange",
    "Trade-Group",
    "Comment",
    "Date",
)

PairOf = Callable[[str], tuple[str, str]]  # instrument -> (base, quote)


def split_pair(instrument: str) -> tuple[str, str]:
    """`BTC-USDT` / `BTC/USDT` -> (`BTC`, `USDT`); the fallback when no catalog knows it."""
    quote = quote_currency(instrument)
    base = instrument[: -len(quote) - 1] if quote else instrument
    return base, quote


@dataclass(frozen=True)
class Trade:
    """One leg of a lot: `bought` of one currency for `sold` of another, at `at`."""

    at: datetime
    bought: Decimal
    bought_currency: str
    sold: Decimal
    sold_currency: str
    fee: Decimal
    fee_currency: str
    comment: str


def trades(lot: RealizedLot, base: str, quote: str) -> tuple[Trade, Trade]:
    """The opening and the closing trade of a lot, in time order."""
    comment = (
        f"{'long' if lot.long else 'short'} lot {lot.instrument} opened "
        f"{_stamp(lot.acquired_at)} closed {_stamp(lot.disposed_at)}; "
        f"gain {_plain(lot.gain)} {quote}"
    )
    buy_at, sell_at = (
        (lot.acquired_at, lot.disposed_at) if lot.long else (lot.disposed_at, lot.acquired_at)
    )
    buy = Trade(buy_at, lot.quantity, base, lot.cost_basis, quote, ZERO, quote, comment)
    sell = Trade(sell_at, lot.proceeds, quote, lot.quantity, base, ZERO, quote, comment)
    if lot.long:
        return buy, _with_fee(sell, lot.fees)
    return sell, _with_fee(buy, lot.fees)


def _with_fee(trade: Trade, fee: Decimal) -> Trade:
    return Trade(
        trade.at,
        trade.bought,
        trade.bought_currency,
        trade.sold,
        trade.sold_currency,
        fee,
        trade.fee_currency,
        trade.comment,
    )


def _stamp(moment: datetime) -> str:
    """`YYYY-MM-DD HH:MM:SS` in UTC (both trackers read it)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _amount(value: Decimal) -> str:
    return "" if value == 0 else _plain(value)


def _koinly(trade: Trade) -> tuple[str, ...]:
    fee = _amount(trade.fee)
    return (
        f"{_stamp(trade.at)} UTC",
        _plain(trade.sold),
        trade.sold_currency,
        _plain(trade.bought),
        trade.bought_currency,
        fee,
        trade.fee_currency if fee else "",
        "",
        "",
        "",
        trade.comment,
        "",
    )


def _cointracking(trade: Trade) -> tuple[str, ...]:
    fee = _amount(trade.fee)
    return (
        "Trade",
        _plain(trade.bought),
        trade.bought_currency,
        _plain(trade.sold),
        trade.sold_currency,
        fee,
        trade.fee_currency if fee else "",
        EXCHANGE,
        "",
        trade.comment,
        _stamp(trade.at),
    )


_TRACKERS: dict[str, tuple[tuple[str, ...], Callable[[Trade], tuple[str, ...]]]] = {
    "koinly": (KOINLY_COLUMNS, _koinly),
    "cointracking": (COINTRACKING_COLUMNS, _cointracking),
}


def _legs(lots: Iterable[RealizedLot], pair_of: PairOf) -> Iterator[Trade]:
    """Every lot's two trades, sorted by time (stable: lot order breaks ties)."""
    legs: list[Trade] = []
    for lot in lots:
        legs.extend(trades(lot, *pair_of(lot.instrument)))
    return iter(sorted(legs, key=lambda t: t.at))


def write_lots(
    lots: Iterable[RealizedLot],
    out: IO[str],
    layout: str = "generic",
    pair_of: PairOf = split_pair,
) -> int:
    """Write the lots in `layout` (one of FORMATS); returns the number of lots written."""
    if layout == "generic":
        return write_csv(lots, out, lambda instrument: pair_of(instrument)[1])
    if layout not in _TRACKERS:
        raise ValueError(f"unknown format {layout!r}: use {', '.join(FORMATS)}")
    columns, row = _TRACKERS[layout]
    realized = list(lots)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(row(trade) for trade in _legs(realized, pair_of))
    return len(realized)


__all__ = ["FORMATS", "PairOf", "Trade", "split_pair", "trades", "write_lots"]
