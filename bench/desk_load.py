"""RiskDesk cold-load time against the length of its history: snapshots keep it flat.

Run `.venv/bin/python bench/desk_load.py [--quick] [--events N] [--out FILE]`. Prints a table and
ends with ONE JSON line: a list of `{name, value, unit, floor, ratio, target, ok}`.

Every approval and every mark is a RiskDesk event, so the desk is the aggregate whose
history grows without bound. On SQLite (a file in a temporary directory) and PostgreSQL
(a fresh schema, dropped at the end) the desk's history is written by the real
TradingApp: a session is started, then marks are observed on the desk in memory and
saved `DESK_SNAPSHOT_INTERVAL` at a time through `TradingApp.save`, which takes the
desk's snapshots exactly as in production (a backtest saves the same way). The history
first reaches 10k desk events plus half an interval, is measured, then grows to 1M plus
half an interval (`--quick`: 100k; `--events N`: N; PostgreSQL: 100k unless `--events`)
and is measured again; at both sizes a load reads the latest snapshot and replays the
half interval of events after it.

1. `desk_load_<store>_<size>_ms`: a cold load, i.e. `Repository.get` of the desk on a
   repository without a cache (what a fresh process does): the latest snapshot, the
   events after it, decode and apply. Median of several loads. For the larger size the
   floor is the 10k load and ratio = 10k load / large load: 1.0 means the load does not
   grow with the log. Target >= 0.5 (reported, never fails the run).
2. `desk_replay_<store>_10k_ms`: the same load with no snapshot store, every event
   replayed from the first: what a load costs without snapshots, and grows linearly.

Run it on a quiet machine: with few cores, other processes move these figures a lot.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from approvals import (
    CAPITAL,
    INSTRUMENT,
    START,
    build_app,
)
from eventsourcing.application import Repository
from figures import Figure, publish
from rich.console import Console
from stores import event_stores

from adapters.clock import SimulatedClock
from application.desk_snapshots import DESK_SNAPSHOT_INTERVAL
from application.trading import TradingApp
from domain.commands import StartSession
from domain.values import Mode

SMALL = 10_000
PG_LARGE = 100_000  # see main()
LOADS = 15  # cold loads per measurement; the median is reported
FLAT_TARGET = 0.5


class DeskHistory:
    """Grows one desk's history by marks, saved an interval at a time like a backtest."""

    def __init__(self, app: TradingApp, clock: SimulatedClock) -> None:
        self.app = app
        self.clock = clock
        self._random = random.Random(20240102)
        self.price = Decimal("50000.00")
        app.execute(
            StartSession(
                session_id=app.ids(), mode=Mode.PAPER, starting_capital=CAPITAL, config_digest="b"
            )
        )

    def grow_to(self, version: int) -> None:
        desk = self.app.desk()
        while desk.version < version:
            next_multiple = (desk.version // DESK_SNAPSHOT_INTERVAL + 1) * DESK_SNAPSHOT_INTERVAL
            upto = min(version, next_multiple)
            while desk.version < upto:
                self.clock.advance(1)
                self.price += Decimal(self._random.randint(-200, 200)) * Decimal("0.01")
                desk.observe_mark(INSTRUMENT, self.price, self.clock())
            self.app.save(desk)


def cold_loads(load: Callable[[], Any], times: int) -> float:
    """Median milliseconds of `times` loads."""
    samples = []
    for _ in range(times):
        t0 = time.perf_counter()
        load()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def measure(app: TradingApp, desk_id: UUID, head: int, snapshot_at: int) -> float:
    """Median cold load, once the desk is where it should be: at `head`, snapshot below."""
    assert app.snapshots is not None
    latest = [s.originator_version for s in app.snapshots.get(desk_id, desc=True, limit=1)]
    repository: Repository[UUID] = Repository(event_store=app.events, snapshot_store=app.snapshots)
    if latest != [snapshot_at] or repository.get(desk_id).version != head:
        raise SystemExit(f"wanted the desk at {head} with a snapshot at {snapshot_at}: {latest}")
    return cold_loads(lambda: repository.get(desk_id), LOADS)


def bench_store(store: str, env: dict[str, str], large: int) -> tuple[list[Figure], str]:
    clock = SimulatedClock(START)
    app = build_app(env, clock)
    try:
        history = DeskHistory(app, clock)
        tail = DESK_SNAPSHOT_INTERVAL // 2
        t0 = time.perf_counter()
        history.grow_to(SMALL)
        history.grow_to(SMALL + tail)
        build_s = time.perf_counter() - t0
        small_ms = measure(app, app.desk_id, SMALL + tail, SMALL)
        no_snapshots: Repository[UUID] = Repository(event_store=app.events)
        replay_ms = cold_loads(lambda: no_snapshots.get(app.desk_id), 3)
        t0 = time.perf_counter()
        history.grow_to(large)
        history.grow_to(large + tail)
        build_s += time.perf_counter() - t0
        large_ms = measure(app, app.desk_id, large + tail, large)
    finally:
        app.close()
    label = f"{large / 1_000_000:g}m" if large >= 1_000_000 else f"{large / 1000:g}k"
    figures = [
        Figure(f"desk_load_{store}_10k_ms", small_ms, "ms", note="cold load, snapshot + tail"),
        Figure(
            f"desk_load_{store}_{label}_ms",
            large_ms,
            "ms",
            small_ms,
            small_ms / large_ms,
            FLAT_TARGET,
            ok=small_ms / large_ms >= FLAT_TARGET,
            note="floor: the 10k load; ratio 1.0 = flat",
        ),
        Figure(f"desk_replay_{store}_10k_ms", replay_ms, "ms", note="no snapshots: every event"),
    ]
    return figures, f"{store}: {large + tail:,} desk events written in {build_s:.1f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="100k instead of 1M events")
    parser.add_argument(
        "--events", type=int, help=f"the larger history: a multiple of {DESK_SNAPSHOT_INTERVAL}"
    )
    parser.add_argument("--out", type=Path, help="also write the JSON list to this file")
    args = parser.parse_args(argv)
    large = args.events or (100_000 if args.quick else 1_000_000)
    if large <= SMALL or large % DESK_SNAPSHOT_INTERVAL:
        parser.error(f"--events must be a multiple of {DESK_SNAPSHOT_INTERVAL} above {SMALL:,}")
    # PostgreSQL's larger history stops at 100k unless asked: its 1M desk events take a
    # minute to write, and the load reads the latest snapshot by the same index query.
    pg_large = large if args.events or args.quick else PG_LARGE
    console = Console(width=max(140, Console().width))
    started = time.perf_counter()
    figures: list[Figure] = []
    for store, env in event_stores(console):
        store_figures, line = bench_store(store, env, large if store == "sqlite" else pg_large)
        figures += store_figures
        console.print(line, highlight=False)
    mode = "quick" if args.quick else "full"
    return publish(
        console, figures, f"AIS desk load ({mode}, {time.perf_counter() - started:.1f} s)", args.out
    )


if __name__ == "__main__":
    raise SystemExit(main())
