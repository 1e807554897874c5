"""FIFO lot matching for `ais report lots`: hand-computed cases and properties."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.position import Lot, apply_fill
from domain.values import Side
from projections.lots import (
    CSV_COLUMNS,
    LotFill,
    lots_for_year,
    match_fifo,
    quote_currency,
    write_csv,
)

D = Decimal
T0 = datetime(2023, 12, 30, tzinfo=UTC)


def fill(side: str, quantity: str, price: str, fee: str, day: int, book: str = "p1") -> LotFill:
    return LotFill(
        book=book,
        instrument="BTC-USDT",
        side=Side(side),
        quantity=D(quantity),
        price=D(price),
        fee=D(fee),
        at=T0 + timedelta(days=day),
    )


def test_partial_lots_fifo_with_fees_pro_rata() -> None:
    fills = [
        fill("BUY", "1", "100", "1", 0),  # lot A
        fill("BUY", "2", "130", "2", 1),  # lot B
        fill("SELL", "1.5", "150", "3", 2),  # closes A, then half of... 0.5 of B
        fill("SELL", "1.5", "90", "0.6", 3),  # closes the rest of B
    ]
    lots = list(match_fifo(fills))
    assert [(lot.quantity, lot.acquired_at.day, lot.disposed_at.day) for lot in lots] == [
        (D("1"), 30, 1),
        (D("0.5"), 31, 1),
        (D("1.5"), 31, 2),
    ]
    a, b1, b2 = lots
    # A: cost 100, proceeds 150, fees 1 (open) + 2 (1/1.5 of the sell fee 3)
    assert (a.cost_basis, a.proceeds, a.fees, a.gain) == (D(100), D(150), D(3), D(47))
    # B part 1: cost 0.5*130, proceeds 0.5*150, fees 0.5 (1/4 of 2) + 1 (rest of 3)
    assert (b1.cost_basis, b1.proceeds, b1.fees) == (D("65.0"), D("75.0"), D("1.5"))
    assert b1.gain == D("8.5")
    # B part 2: cost 1.5*130, proceeds 1.5*90, fees 1.5 (rest of 2) + 0.6
    assert (b2.cost_basis, b2.proceeds, b2.fees) == (D("195.0"), D("135.0"), D("2.1"))
    assert b2.gain == D("-62.1")
    assert all(lot.long for lot in lots)


def test_short_lots_and_flip_through_zero() -> None:
    fills = [
        fill("SELL", "2", "200", "2", 0),  # opens a short of 2
        fill("BUY", "3", "150", "3", 1),  # covers 2, opens a long of 1 with fee 1
        fill("SELL", "1", "170", "0.5", 2),
    ]
    short, long = list(match_fifo(fills))
    assert not short.long and long.long
    assert (short.quantity, short.proceeds, short.cost_basis, short.fees) == (
        D(2),
        D(400),
        D(300),
        D(4),
    )
    assert short.gain == D(96)
    assert (long.quantity, long.cost_basis, long.proceeds, long.fees, long.gain) == (
        D(1),
        D(150),
        D(170),
        D("1.5"),
        D("18.5"),
    )


def test_books_are_separate_and_year_filter_uses_disposal_date() -> None:
    fills = [
        fill("BUY", "1", "100", "0", 0, book="a"),  # 2023-12-30
        fill("BUY", "1", "50", "0", 0, book="b"),
        fill("SELL", "1", "110", "0", 1, book="a"),  # 2023-12-31
        fill("SELL", "1", "60", "0", 3, book="b"),  # 2024-01-02
    ]
    assert [lot.gain for lot in lots_for_year(fills, 2023)] == [D(10)]
    in_2024 = lots_for_year(fills, 2024)
    assert [(lot.gain, lot.acquired_at.year) for lot in in_2024] == [(D(10), 2023)]
    assert len(lots_for_year(fills, None)) == 2
    assert lots_for_year(fills, 2022) == []


def test_bad_fills_are_refused() -> None:
    with pytest.raises(ValueError, match="quantity"):
        list(match_fifo([fill("BUY", "0", "1", "0", 0)]))
    with pytest.raises(ValueError, match="fee"):
        list(match_fifo([fill("BUY", "1", "1", "-1", 0)]))


def test_csv_has_the_columns_and_exact_decimals() -> None:
    fills = [
        fill("BUY", "0.00001", "42000.01", "0.0001", 0),
        fill("SELL", "0.00001", "1E+5", "0", 1),
    ]
    out = io.StringIO()
    assert write_csv(match_fifo(fills), out) == 1
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert tuple(rows[0]) == CSV_COLUMNS
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["quantity"] == "0.00001"
    assert D(row["proceeds"]) == 1
    assert row["cost_basis"] == "0.4200001"
    assert row["quote_currency"] == "USDT"
    assert D(row["gain"]) == D("1") - D("0.4200001") - D("0.0001")
    assert "E" not in out.getvalue()
    assert row["acquired_at"] == "2023-12-30T00:00:00+00:00"
    assert quote_currency("ETH/BTC") == "BTC" and quote_currency("X") == ""


quantities = st.integers(min_value=1, max_value=5000).map(lambda n: D(n) / 1000)
prices = st.integers(min_value=1, max_value=10**7).map(lambda n: D(n) / 100)
fees = st.integers(min_value=0, max_value=10**4).map(lambda n: D(n) / 10**4)
fill_args = st.tuples(st.sampled_from(["BUY", "SELL"]), quantities, prices, fees)


@settings(max_examples=200, deadline=None)
@given(st.lists(fill_args, min_size=1, max_size=25))
def test_flat_book_gains_equal_cash_flow_and_fees_add_up(
    args: list[tuple[str, Decimal, Decimal, Decimal]],
) -> None:
    """Closing out the position: FIFO gains sum to the net cash flow, every fee counted
    once, quantities conserved, and the total matches the average-cost fold."""
    fills = [fill(side, str(q), str(p), str(f), i) for i, (side, q, p, f) in enumerate(args)]
    held = sum((f.side.sign * f.quantity for f in fills), D(0))
    if held != 0:  # close it out at some price, with a fee
        side = "SELL" if held > 0 else "BUY"
        fills.append(fill(side, str(abs(held)), "123.45", "0.7", len(fills)))
    lots = list(match_fifo(fills))
    cash = sum((-f.side.sign * f.quantity * f.price for f in fills), D(0))
    total_fees = sum((f.fee for f in fills), D(0))
    assert sum((lot.fees for lot in lots), D(0)) == total_fees
    assert sum((lot.gain for lot in lots), D(0)) == cash - total_fees
    opened = sum((f.quantity for f in fills), D(0))
    assert 2 * sum((lot.quantity for lot in lots), D(0)) == opened
    for lot in lots:
        assert lot.quantity > 0 and lot.fees >= 0
        assert lot.acquired_at <= lot.disposed_at
        assert lot.gain == lot.proceeds - lot.cost_basis - lot.fees
    folded = Lot()
    for f in fills:
        folded = apply_fill(folded, f.side, f.quantity, f.price, f.fee)
    assert folded.quantity == 0
    assert abs(folded.realized_pnl - (cash - total_fees)) < D("1e-12")


def test_cli_refuses_a_bad_year_and_writes_a_header_for_an_empty_log(tmp_path: Path) -> None:
    from tests.test_cli import ais

    bad = ais("report", "lots", "--year", "99", home=tmp_path)
    assert (
        bad.returncode == 1
        and bad.stderr.strip() == "error: --year must be a four-digit year, got 99"
    )
    out = tmp_path / "out" / "lots.csv"
    empty = ais("report", "lots", "--year", "2024", "--out", str(out), home=tmp_path)
    assert empty.returncode == 0, empty.stderr
    assert out.read_text() == ",".join(CSV_COLUMNS) + "\n"
    assert "0 lots" in empty.stderr
