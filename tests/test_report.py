"""The report folder: files, valid PNGs of the right size, numbers in the HTML, JSON that
round-trips, and the same bytes for the same inputs."""

from __future__ import annotations

import csv
import json
import struct
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
from matplotlib import image

from adapters.report import (
    DPI,
    FIGSIZE,
    display_rows,
    money_places,
    performance_inputs,
    period_label,
    summary_table,
    write_report,
)
from adapters.settings import PROJECT_ROOT
from application.performance import EquityPoint, Fill, PerformanceInputs, Summary, summarize
from application.trading import TradingApp
from domain.commands import EndSession
from tests.conftest import ReadModels
from tests.test_performance import Trader

CANDLES = PROJECT_ROOT / "data" / "binance_BTCUSDT_1m.csv"
FEE = Decimal("0.001")
FILES = ("index.html", "equity.png", "drawdown.png", "summary.json")


def btc_history(limit: int = 240) -> PerformanceInputs:
    """Real BTC/USDT closes: buy 2 BTC at the start, sell 1 after 1 h and 1 after 2 h."""
    with CANDLES.open(newline="") as handle:
        rows = list(csv.DictReader(handle))[:limit]
    cash, held = Decimal(100000), Decimal(0)
    points, fills = [], []
    script = {0: Decimal(2), 60: Decimal(-1), 120: Decimal(-1)}
    for i, row in enumerate(rows):
        at = datetime.fromtimestamp(int(row["timestamp_ms"]) // 1000 + 60, tz=UTC)
        price = Decimal(row["close"])
        points.append(EquityPoint(at, cash + held * price))
        if i in script:
            quantity = script[i]
            fee = abs(quantity) * price * FEE
            cash -= quantity * price + fee
            held += quantity
            fills.append(Fill("BTC-USDT", abs(quantity), price, fee, at=at))
    return PerformanceInputs(
        points,
        fills,
        order_count=4,
        fill_count=3,
        rejections={"max_order_quantity": 1, "stale_mark": 1, "max_position_weight": 2},
        starting_capital=Decimal(100000),
        currency="USDT",
    )


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert b"IEND" in data[-12:]
    return width, height


def test_report_folder_from_real_candles(tmp_path: Path) -> None:
    inputs = btc_history()
    summary = summarize(inputs)
    files = write_report(
        tmp_path / "report",
        summary,
        inputs,
        data="data/binance_BTCUSDT_1m.csv, 240 one-minute candles",
        seed=42,
        session="session-1",
    )
    for name in FILES:
        assert (tmp_path / "report" / name).stat().st_size > 0
    assert files.index.name == "index.html" and files.directory == tmp_path / "report"

    for png, colour in ((files.equity, (0x1F, 0x77, 0xB4)), (files.drawdown, (0xD6, 0x27, 0x28))):
        assert png_size(png) == (int(FIGSIZE[0] * DPI), int(FIGSIZE[1] * DPI))
        pixels = np.asarray(image.imread(png))
        assert pixels.shape == (400, 900, 4)
        assert float(pixels[..., :3].std()) > 0.05  # not a blank canvas
        # the curve is drawn in its colour: at least a hundred pixels of it
        rgb = np.round(pixels[..., :3] * 255)
        hits = np.all(np.abs(rgb - np.array(colour)) <= 3, axis=-1).sum()
        assert hits > 100, (png.name, hits)

    page = files.index.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert '<img src="equity.png"' in page and '<img src="drawdown.png"' in page
    assert "Seed: 42" in page and "240 one-minute candles" in page
    for row in display_rows(summary):
        assert f'<td class="num">{row.value}</td>' in page, row
    # numbers as a reader would round them, computed here from the summary independently
    assert f'<td class="num">{float(summary.total_return) * 100:.3f}</td><td>%</td>' in page
    assert f'<td class="num">{float(summary.max_drawdown) * 100:.3f}</td>' in page
    assert f'<td class="num">{summary.final_equity:.2f}</td><td>USDT</td>' in page
    assert summary.sharpe is not None and f"{float(summary.sharpe):.2f}</td>" in page
    for guard, count in summary.rejections.items():
        assert f'<tr><td>{guard}</td><td class="num">{count}</td></tr>' in page

    document = json.loads(files.summary.read_text(encoding="utf-8"))
    assert document["seed"] == "42" and document["session"] == "session-1"
    numbers = document["summary"]
    assert all(v is None or isinstance(v, str | dict) for v in numbers.values())
    assert Summary.from_dict(numbers) == summary
    assert Decimal(numbers["total_return"]) == summary.total_return
    assert numbers["rejections"] == {
        "max_order_quantity": "1",
        "max_position_weight": "2",
        "stale_mark": "1",
    }

    # the same inputs give the same bytes, images included
    again = write_report(
        tmp_path / "again",
        summarize(btc_history()),
        btc_history(),
        data="data/binance_BTCUSDT_1m.csv, 240 one-minute candles",
        seed=42,
        session="session-1",
    )
    for name in FILES:
        assert (files.directory / name).read_bytes() == (again.directory / name).read_bytes(), name


def test_report_of_a_flat_single_session_without_rejections(tmp_path: Path) -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    inputs = PerformanceInputs([EquityPoint(t0, Decimal("2.5"))], currency="BTC")
    summary = summarize(inputs)
    files = write_report(tmp_path, summary, inputs)
    page = files.index.read_text(encoding="utf-8")
    assert "No command was rejected." in page and "Seed: none" in page
    assert '<td class="num">—</td>' in page  # Sharpe of one point is undefined, not 0
    assert '<td class="num">2.50000000</td><td>BTC</td>' in page
    assert png_size(files.drawdown) == png_size(files.equity) == (900, 400)
    assert Summary.from_dict(json.loads(files.summary.read_text())["summary"]) == summary


def test_display_helpers() -> None:
    assert (money_places("USDT"), money_places("BTC"), money_places("")) == (2, 8, 2)
    assert period_label(Decimal(86400)) == "1 day"
    assert period_label(Decimal(3600)) == "1 h"
    assert period_label(Decimal(300)) == "5 min"
    assert period_label(Decimal(90)) == "90 s"
    summary = summarize(btc_history(60))
    table = summary_table(summary)
    assert table.row_count == len(display_rows(summary)) + 3  # + one row a guard
    values = {row.metric: row.value for row in display_rows(summary)}
    assert values["Orders"] == "4" and values["Fills"] == "3" and values["Rejections"] == "4"


def test_report_from_the_read_store(
    app: TradingApp, read_models: ReadModels, tmp_path: Path
) -> None:
    """The path the CLI takes: project, dump the read models, summarize, write."""
    trader = Trader(app)
    for minute, price in enumerate(("50000", "50100", "49800", "50300", "50250")):
        if minute:
            trader.clock.advance(60)
        trader.mark("BTC-USDT", Decimal(price))
        if minute == 1:
            trader.order("BTC-USDT", "BUY", ["0.1"])
    app.execute(EndSession(session_id=trader.session_id, reason="done"))
    read_models.projector().run_once()

    inputs = performance_inputs(read_models.store, str(trader.session_id))
    summary = summarize(inputs)
    # bought 0.1 at 50100 with a 5.01 fee; last mark 50250: +15 - 5.01
    assert summary.final_equity == Decimal(100000) + Decimal(15) - Decimal("5.01")
    assert (summary.orders, summary.fills, summary.fees) == (1, 1, Decimal("5.01"))
    assert summary.period_seconds == 60 and summary.periods == 4
    files = write_report(tmp_path, summary, inputs, data="test marks", seed=1)
    assert png_size(files.equity) == (900, 400)
    assert '<td class="num">100009.99</td><td>USDT</td>' in files.index.read_text()
