"""The scripted paper session behind `ais demo`: real BTC/USDT candles, approved orders.

Every order goes through the RiskDesk; two are refused on purpose so the output shows
what a rejection looks like. Fills happen at the candle close with a 0.1 % taker fee.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from uuid import UUID

from rich.console import Console
from rich.table import Table

from adapters.clock import SimulatedClock, random_ids
from adapters.keys import init_keys, load_keyring
from adapters.settings import PROJECT_ROOT, Settings
from application.errors import RiskRejected
from application.trading import TradingApp
from domain.commands import (
    AcknowledgeOrder,
    EndSession,
    PlaceOrder,
    StartSession,
    SubmitOrder,
    position_id,
)
from domain.order import Order
from domain.values import Mode, OrderType, Side
from interfaces.bootstrap import build_app
from interfaces.read_side import read_side
from projections.digest import combined, digests

FEE_RATE = Decimal("0.001")
CANDLES = PROJECT_ROOT / "data" / "binance_BTCUSDT_1m.csv"


@dataclass(frozen=True)
class Candle:
    closes_at: datetime
    close: Decimal


def read_candles(path: Path, limit: int) -> list[Candle]:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))[:limit]
    return [
        Candle(
            datetime.fromtimestamp(int(r["timestamp_ms"]) / 1000 + 60, tz=UTC),
            Decimal(r["close"]),
        )
        for r in rows
    ]


class PaperDemo:
    def __init__(self, app: TradingApp, clock: SimulatedClock, console: Console) -> None:
        self.app, self.clock, self.console = app, clock, console
        self.session_id = app.ids()
        self.order_ids: list[UUID] = []

    def trade(self, instrument: str, side: str, quantity: str, price: Decimal) -> None:
        order_id = self.app.ids()
        place = PlaceOrder(
            order_id=order_id,
            session_id=self.session_id,
            instrument=instrument,
            side=Side(side),
            order_type=OrderType.LIMIT,
            quantity=Decimal(quantity),
            limit_price=price,
            reduce_only=side == "SELL",
        )
        try:
            self.app.execute(place)
        except RiskRejected as refused:
            self.console.print(f"  [yellow]refused[/] {side} {quantity} {instrument}: {refused}")
            return
        self.order_ids.append(order_id)
        self.app.execute(SubmitOrder(order_id=order_id, client_order_id=f"ais-{order_id.hex[:20]}"))
        self.app.execute(
            AcknowledgeOrder(order_id=order_id, exchange_order_id=f"paper-{order_id.hex[:8]}")
        )
        notional = Decimal(quantity) * price
        self.app.record_fill(
            order_id,
            trade_id=f"paper-{self.app.ids().hex[:12]}",
            quantity=Decimal(quantity),
            price=price,
            fee=(notional * FEE_RATE).quantize(Decimal("0.00000001")),
            filled_at=self.clock(),
        )
        self.console.print(f"  [green]filled[/]  {side} {quantity} {instrument} @ {price}")

    def run(self, candles: list[Candle]) -> None:
        self.clock.set(candles[0].closes_at)
        self.app.execute(
            StartSession(
                session_id=self.session_id,
                mode=Mode.PAPER,
                starting_capital=Decimal(100000),
                config_digest="demo",
            )
        )
        script = {
            0: [("BTC-USDT", "BUY", "0.5")],
            5: [("BTC-USDT", "BUY", "3")],  # above the mandate's max order quantity
            10: [("BTC-USDT", "BUY", "1.5")],  # would push BTC above 10 % of NAV
            20: [("ETH-USDT", "BUY", "1")],  # no ETH mark observed: fails closed
            60: [("BTC-USDT", "SELL", "0.2")],
            120: [("BTC-USDT", "SELL", "0.3")],
        }
        for index, candle in enumerate(candles):
            self.clock.set(candle.closes_at)
            self.app.observe_mark("BTC-USDT", candle.close)
            for instrument, side, quantity in script.get(index, []):
                self.trade(instrument, side, quantity, candle.close)
        self.app.execute(EndSession(session_id=self.session_id, reason="demo finished"))

    def report(self) -> None:
        orders = Table(title="Orders", show_lines=False)
        for column in ("order", "side", "qty", "limit", "status", "filled", "avg price", "fees"):
            orders.add_column(
                column, justify="right" if column not in ("order", "side") else "left"
            )
        for order_id in self.order_ids:
            o: Order = self.app.order(order_id)
            orders.add_row(
                str(o.id)[:8],
                o.side,
                str(o.quantity),
                str(o.limit_price),
                o.status,
                str(o.filled_quantity),
                f"{o.average_price:.2f}" if o.average_price else "-",
                str(o.fees),
            )
        self.console.print(orders)
        p = self.app.position(position_id(self.app.account_id, "BTC-USDT"))
        positions = Table(title="Positions")
        for column in ("instrument", "quantity", "avg entry", "realized P&L (net of fees)", "fees"):
            positions.add_column(column, justify="right")
        positions.add_row(
            p.instrument,
            str(p.quantity),
            str(p.lot.average_entry),
            f"{p.lot.realized_pnl:.8f}",
            f"{p.lot.fees:.8f}",
        )
        self.console.print(positions)
        desk = self.app.desk()
        self.console.print(
            f"risk desk: {desk.approved_count} approved, {desk.rejected_count} rejected, "
            f"kill switch {desk.kill_state}, cash {desk.cash:.8f} USDT"
        )


def run_demo(settings: Settings, console: Console) -> None:
    if settings.risk_hmac_keys is None and not load_keyring(settings).keys:
        for path in init_keys(settings.keys_file.parent):
            console.print(f"created {path}")
    candles = read_candles(CANDLES, limit=180)
    clock = SimulatedClock(candles[0].closes_at)
    app = build_app(settings, clock=clock, ids=random_ids)
    try:
        console.print(
            f"paper session over {len(candles)} real BTC/USDT 1m candles ({CANDLES.name})"
        )
        demo = PaperDemo(app, clock, console)
        demo.run(candles)
        demo.report()
    finally:
        app.close()
    report_read_models(settings, console)


def report_read_models(settings: Settings, console: Console) -> None:
    """Project the log and show what the read side says: NAV, drawdown, exposure."""
    with read_side(settings) as side:
        side.projector().run_once()
        [summary] = [
            row for table, row in side.store.dump(side.projections[0]) if table == "portfolio"
        ]
        console.print(
            f"portfolio (read model): NAV {summary['nav']} USDT, high-water mark "
            f"{summary['high_water_mark']}, drawdown {Decimal(summary['drawdown']):.4%}, "
            f"max drawdown {Decimal(summary['max_drawdown']):.4%}, "
            f"daily P&L {summary['daily_pnl']}"
        )
        exposure = Table(title="Exposure (read model)")
        for column in ("instrument", "quantity", "mark", "notional", "weight"):
            exposure.add_column(column, justify="right")
        for table, row in side.store.dump(side.projections[1]):
            if table == "exposure":
                exposure.add_row(
                    row["instrument"],
                    row["quantity"],
                    row["mark"] or "-",
                    row["notional"] or "-",
                    row["weight"] or "-",
                )
        console.print(exposure)
        console.print(f"read-model digest {combined(digests(side.store, side.projections))}")
