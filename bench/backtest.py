"""Backtest throughput: candles (instrument-bars) per second over the ten 5-minute series.

Run `.venv/bin/python bench/backtest.py [--quick]`. The full run is the demo's workload:
ten BTC-quoted pairs, 20 days, events persisted on SQLite, then every read model
projected. Prints a table with per-stage time shares and ends with one JSON line (a list
of `{name, value, unit, floor, ratio, target, ok}`). The floor is the raw eventsourcing
save rate for the same number of saves (one per bar close), measured in the same run on a
store configured like the run's: the loop cannot be faster than persisting its marks.
The run is `ais backtest`'s: its own SQLite store, the app its sole writer
(`adapters.persistence.sole_writer`: no fsync per commit, no fast-forward query per load).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from figures import Figure, publish  # noqa: E402

from adapters.persistence import eventsourcing_env, sole_writer  # noqa: E402
from adapters.settings import Settings  # noqa: E402
from interfaces.backtest_run import BacktestRequest, run  # noqa: E402
from interfaces.read_side import read_side  # noqa: E402

TARGET_CANDLES_PER_S = 20_000.0


class Tick(Aggregate):
    @event("Ticked")
    def tick(self) -> None:
        pass


class RawApp(Application[object]):  # type: ignore[type-var]
    name = "raw"


def raw_saves_per_second(home: Path, saves: int) -> float:
    app = RawApp(sole_writer(eventsourcing_env(None, home)))  # configured like the run's
    aggregate = Tick()
    app.save(aggregate)
    start = time.perf_counter()
    for _ in range(saves):
        aggregate.tick()
        app.save(aggregate)
    elapsed = time.perf_counter() - start
    app.close()
    return saves / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="two days instead of twenty")
    args = parser.parse_args()
    console = Console()
    end = datetime(2018, 1, 12, tzinfo=UTC) if args.quick else None
    files = sorted((ROOT / "data").glob("*BTC_5m.csv"))
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        settings = Settings(home=home, risk_hmac_keys="bench:" + "b" * 40)  # type: ignore[arg-type]
        request = BacktestRequest(files, ROOT / "config" / "btc-quoted", Decimal(10), 7, end=end)
        start = time.perf_counter()
        # As `ais backtest` runs it: in a store of its own, the app its sole writer.
        outcome = run(request, settings, sole_writer(eventsourcing_env(None, home / "bt")))
        loop_seconds = time.perf_counter() - start
        project_start = time.perf_counter()
        with read_side(settings.model_copy(update={"home": home / "bt"})) as side:
            projected = side.projector().run_once()
        project_seconds = time.perf_counter() - project_start
        floor = raw_saves_per_second(home / "raw", outcome.bars)

    stages = dict(outcome.times.seconds)
    stages["projections"] = project_seconds
    total = loop_seconds + project_seconds
    stages["other (loop bookkeeping)"] = max(
        0.0, loop_seconds - sum(outcome.times.seconds.values())
    )
    candles_per_s = outcome.candles / total
    bars_per_s = outcome.bars / loop_seconds
    figures = [
        Figure(
            "backtest_candles_per_s",
            candles_per_s,
            "candle/s",
            target=TARGET_CANDLES_PER_S,
            ok=candles_per_s >= TARGET_CANDLES_PER_S,
            note="instrument-bars through the loop and the projections",
        ),
        Figure(
            "backtest_bar_closes_per_s",
            bars_per_s,
            "bar/s",
            floor,
            bars_per_s / floor,
            note="loop steps ÷ raw one-event saves",
        ),
        Figure(
            "backtest_projection_events_per_s",
            projected / project_seconds,
            "event/s",
            note="projecting the backtest's log afterwards",
        ),
    ]
    table = Table(title=f"backtest: {outcome.candles} candles, {outcome.bars} bar closes")
    for column in ("stage", "seconds", "share"):
        table.add_column(column, justify="right" if column != "stage" else "left")
    for stage, seconds in sorted(stages.items(), key=lambda kv: -kv[1]):
        table.add_row(stage, f"{seconds:.2f}", f"{seconds / total:.1%}")
    console.print(table)
    console.print(
        f"{candles_per_s:,.0f} candles/s overall ({total:.1f} s), "
        f"{bars_per_s:,.0f} bar closes/s in the loop vs raw saves {floor:,.0f}/s; "
        f"projected {projected} events in {project_seconds:.1f} s"
    )
    return publish(console, figures, "AIS backtest", None)


if __name__ == "__main__":
    raise SystemExit(main())
