"""Realized lots in tracker layouts (`ais report lots --format`, GET /v1/reports/lots):
Koinly universal and CoinTracking CSV, checked against hand-computed lots, plus the
property that a tracker's own FIFO over the written trades gives back every lot's gain."""

from __future__ import annotations

import csv
import io
import subprocess
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from domain.values import Side
from interfaces.lot_source import pair_resolver
from projections.lot_formats import (
    COINTRACKING_COLUMNS,
    FORMATS,
    KOINLY_COLUMNS,
    split_pair,
    write_lots,
)
from projections.lots import CSV_COLUMNS, LotFill, match_fifo

D = Decimal
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
CONFIG = Path(__file__).resolve().parents[1] / "config"


def fill(side: str, quantity: str, price: str, fee: str, hours: int) -> LotFill:
    return LotFill(
        book="p1", instrument="ETH-BTC", side=Side(side), quantity=D(quantity),
        price=D(price), fee=D(fee), at=T0 + timedelta(hours=hours),
    )  # fmt: skip


# A long lot (buy 2 @ 0.05, sell 2 @ 0.06) and a short one (sell 1 @ 0.07, buy 1 @ 0.065).
FILLS = [
    fill("BUY", "2", "0.05", "0.0001", 0),
    fill("SELL", "2", "0.06", "0.0002", 1),
    fill("SELL", "1", "0.07", "0.00005", 2),
    fill("BUY", "1", "0.065", "0.00004", 3),
]


def rows(layout: str) -> list[dict[str, str]]:
    out = io.StringIO()
    assert write_lots(list(match_fifo(FILLS)), out, layout) == 2
    return list(csv.DictReader(io.StringIO(out.getvalue())))


def test_koinly_rows_are_the_trades_of_each_lot() -> None:
    written = rows("koinly")
    assert list(written[0]) == list(KOINLY_COLUMNS)
    got = [
        (r["Date"], r["Sent Amount"], r["Sent Currency"], r["Received Amount"],
         r["Received Currency"], r["Fee Amount"], r["Fee Currency"])
        for r in written
    ]  # fmt: skip
    assert got == [
        ("2024-03-01 12:00:00 UTC", "0.10", "BTC", "2", "ETH", "", ""),
        ("2024-03-01 13:00:00 UTC", "2", "ETH", "0.12", "BTC", "0.0003", "BTC"),
        ("2024-03-01 14:00:00 UTC", "1", "ETH", "0.07", "BTC", "", ""),
        ("2024-03-01 15:00:00 UTC", "0.065", "BTC", "1", "ETH", "0.00009", "BTC"),
    ]
    assert "long lot ETH-BTC" in written[0]["Description"]
    assert "short lot ETH-BTC" in written[3]["Description"]
    assert "gain 0.00491 BTC" in written[3]["Description"]  # 0.07 - 0.065 - 0.00009


def test_cointracking_rows_buy_sell_fee_exchange_date() -> None:
    written = rows("cointracking")
    assert list(written[0]) == list(COINTRACKING_COLUMNS)
    got = [
        (r["Type"], r["Buy Amount"], r["Buy Currency"], r["Sell Amount"], r["Sell Currency"],
         r["Fee"], r["Fee Currency"], r["Exchange"], r["Date"])
        for r in written
    ]  # fmt: skip
    assert got == [
        ("Trade", "2", "ETH", "0.10", "BTC", "", "", "AIS", "2024-03-01 12:00:00"),
        ("Trade", "0.12", "BTC", "2", "ETH", "0.0003", "BTC", "AIS", "2024-03-01 13:00:00"),
        ("Trade", "0.07", "BTC", "1", "ETH", "", "", "AIS", "2024-03-01 14:00:00"),
        ("Trade", "1", "ETH", "0.065", "BTC", "0.00009", "BTC", "AIS", "2024-03-01 15:00:00"),
    ]


def test_a_trackers_fifo_over_the_trades_gives_back_each_lots_gain() -> None:
    """Quote received - quote paid - fees over the trades equals the sum of the gains."""
    lots = list(match_fifo(FILLS))
    written = rows("cointracking")
    flow = sum(
        (D(r["Buy Amount"]) if r["Buy Currency"] == "BTC" else -D(r["Sell Amount"]))
        - (D(r["Fee"]) if r["Fee"] else D(0))
        for r in written
    )
    assert flow == sum(lot.gain for lot in lots)
    base = sum(
        (D(r["Buy Amount"]) if r["Buy Currency"] == "ETH" else -D(r["Sell Amount"]))
        for r in written
    )
    assert base == 0  # every lot is closed: the trades leave no base currency behind


def test_generic_is_the_plain_lot_csv_and_bad_formats_are_refused() -> None:
    written = rows("generic")
    assert list(written[0]) == list(CSV_COLUMNS)
    assert [r["gain"] for r in written] == ["0.0197", "0.00491"]
    assert FORMATS == ("generic", "koinly", "cointracking")
    with pytest.raises(ValueError, match="unknown format 'excel'"):
        write_lots([], io.StringIO(), "excel")


def test_pairs_come_from_the_catalog_or_the_symbol() -> None:
    assert split_pair("BTC-USDT") == ("BTC", "USDT")
    assert split_pair("XBT/EUR") == ("XBT", "EUR")
    assert split_pair("WEIRD") == ("WEIRD", "")
    pair_of = pair_resolver(CONFIG)
    assert pair_of("ETH-USDT") == ("ETH", "USDT")
    assert pair_resolver(None)("ADA-BTC") == ("ADA", "BTC")


def test_cli_refuses_an_unknown_format_with_one_line(tmp_path: Path) -> None:
    from tests.e2e_helpers import CLI, ROOT, environ

    done = subprocess.run(
        [*CLI, "report", "lots", "--format", "excel"],
        cwd=ROOT, env=environ(tmp_path / "home"), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip() == "error: --format 'excel': use generic, koinly, cointracking"
