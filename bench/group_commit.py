"""Group commit benchmark: approved commands/s from concurrent callers, against two floors.

Run `.venv/bin/python bench/group_commit.py [--quick] [--out FILE]`. Prints a table and
ends with ONE JSON line (see bench/figures.py).

The load: `THREADS` caller threads share one `TradingApp` through one
`application.group_commit.GroupCommitter`; each runs its own order life cycles (the
approvals bench's `OrderFlow`: PlaceOrder, SubmitOrder, AcknowledgeOrder, and CancelOrder
once more than four of its orders are open) and waits for each command's commit before
sending the next, as an HTTP handler would. Every command goes through the RiskDesk
(guards, digests, HMAC), the target's verification and a save; the committer's thread
decides whatever has queued up against one desk and writes it in one transaction.

Measured on SQLite (a file in a temporary directory) and PostgreSQL (a fresh schema):
1. `group_commit_<store>_cmds_per_s`: approved commands/s with grouping (at most 64
   units per transaction). Floor: the raw eventsourcing save rate measured in the same
   run (a trivial aggregate, one event per `save()`, bracketing the measured runs).
   Stretch target on SQLite: 10,000 commands/s.
2. `..._vs_store_txn`: the same rate against the store's own floor, one small INSERT
   per transaction straight through the driver (SQLite: WAL, `synchronous=NORMAL`;
   PostgreSQL: autocommit), same run.
3. `one_txn_per_cmd_<store>_cmds_per_s`: the same callers and committer with groups of
   one (a transaction per command, what a lock around `execute` gives): what grouping buys.
4. `group_commit_<store>_cmds_per_txn` and the callers' p50/p99 wait per command.

Marks are observed once, with the mark-age limit raised for the run: a mark is not a
command, and observing it from another thread would race the committer for the desk.
The duplicate and rate guards see one order every two simulated seconds per caller.

Run it on a quiet machine: with two cores, other processes move these figures a lot.
"""

from __future__ import annotations

import argparse
import dataclasses
import sqlite3
import threading
import time
import uuid
from collections import deque
from decimal import Decimal
from pathlib import Path

import psycopg
from approvals import (
    CAPITAL,
    FIRST_MARK,
    INSTRUMENT,
    START,
    STEP_SECONDS,
    OrderFlow,
    RawApp,
    _Tally,
    bench_limits,
    build_app,
    raw_saves,
)
from figures import Figure, percentile, publish
from rich.console import Console
from stores import PG_DSN, event_stores

from adapters.clock import SimulatedClock
from application.group_commit import DEFAULT_MAX_GROUP, GroupCommitter
from application.trading import TradingApp
from domain.commands import (
    AcknowledgeOrder,
    CancelOrder,
    Command,
    StartSession,
    SubmitOrder,
)
from domain.values import Mode

OPEN_ORDERS = 4
PRICE_APART = Decimal("1.00")
SQLITE_TARGET = 10_000.0  # the stretch goal, approved commands/s
PAYLOAD = b"x" * 600  # about one command's events in the raw store floor


@dataclasses.dataclass(frozen=True)
class Sizes:
    threads: int
    orders_per_thread: int  # each about four commands


QUICK = Sizes(threads=4, orders_per_thread=8)
FULL = Sizes(threads=8, orders_per_thread=100)


@dataclasses.dataclass
class Run:
    commands: int
    seconds: float
    waits_us: list[float]
    groups: int
    units: int


def _caller(
    committer: GroupCommitter,
    flow: OrderFlow,
    clock: SimulatedClock,
    step: float,
    orders: int,
    waits: list[float],
) -> None:
    open_orders: deque[uuid.UUID] = deque()

    def send(command: Command) -> None:
        clock.advance(step)
        t0 = time.perf_counter_ns()
        committer.execute(command)
        waits.append((time.perf_counter_ns() - t0) / 1000)

    for n in range(orders):
        place = flow.place()
        send(place)
        send(SubmitOrder(order_id=place.order_id, client_order_id=f"g-{place.order_id.hex[:20]}"))
        send(AcknowledgeOrder(order_id=place.order_id, exchange_order_id=f"x-{n}"))
        open_orders.append(place.order_id)
        if len(open_orders) > OPEN_ORDERS:
            send(CancelOrder(order_id=open_orders.popleft(), reason="bench"))
    while open_orders:
        send(CancelOrder(order_id=open_orders.popleft(), reason="bench"))


@dataclasses.dataclass
class Desk:
    """One app, its session and clock, shared by the runs on a store."""

    app: TradingApp
    session_id: uuid.UUID
    clock: SimulatedClock

    @classmethod
    def open(cls, env: dict[str, str]) -> Desk:
        clock = SimulatedClock(START)
        limits = dataclasses.replace(bench_limits(), max_mark_age_seconds=10**9)
        app = build_app(env, clock, limits)
        session_id = app.ids()
        app.execute(
            StartSession(
                session_id=session_id,
                mode=Mode.PAPER,
                starting_capital=CAPITAL,
                config_digest="bench",
            )
        )
        app.observe_mark(INSTRUMENT, FIRST_MARK)
        return cls(app, session_id, clock)


def run_load(desk: Desk, sizes: Sizes, max_group: int) -> Run:
    """`sizes.threads` callers through one committer; every command must be approved."""
    committer = GroupCommitter(desk.app, max_group=max_group)
    # One order every two simulated seconds per caller, as in the approvals bench.
    step = STEP_SECONDS / sizes.threads
    waits: list[list[float]] = [[] for _ in range(sizes.threads)]
    flows = [OrderFlow(desk.session_id, desk.app.ids) for _ in range(sizes.threads)]
    for k, flow in enumerate(flows):  # callers' prices apart: not each other's duplicates
        flow.mark -= k * PRICE_APART
    threads = [
        threading.Thread(
            target=_caller,
            args=(committer, flows[k], desk.clock, step, sizes.orders_per_thread, waits[k]),
        )
        for k in range(sizes.threads)
    ]
    try:
        t0 = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - t0
    finally:
        committer.close()
    all_waits = sorted(w for mine in waits for w in mine)
    expected = sizes.threads * sizes.orders_per_thread * 4
    if len(all_waits) != expected:
        raise SystemExit(f"group commit bench: {len(all_waits)} of {expected} commands approved")
    return Run(len(all_waits), seconds, all_waits, committer.groups, committer.units)


def sqlite_txn_rate(folder: Path, transactions: int) -> float:
    """One INSERT per transaction on a WAL file with synchronous=NORMAL."""
    connection = sqlite3.connect(folder / "raw-floor.sqlite", isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body BLOB)")
        t0 = time.perf_counter()
        for _ in range(transactions):
            connection.execute("BEGIN")
            connection.execute("INSERT INTO t (body) VALUES (?)", (PAYLOAD,))
            connection.execute("COMMIT")
        return transactions / (time.perf_counter() - t0)
    finally:
        connection.close()


def postgres_txn_rate(schema: str, transactions: int) -> float:
    """One INSERT per (autocommit) transaction in the run's schema."""
    with psycopg.connect(PG_DSN, autocommit=True) as connection:
        connection.execute(f'SET search_path TO "{schema}"')
        connection.execute("CREATE TABLE IF NOT EXISTS raw_floor (id bigserial, body bytea)")
        t0 = time.perf_counter()
        for _ in range(transactions):
            connection.execute("INSERT INTO raw_floor (body) VALUES (%s)", (PAYLOAD,))
        return transactions / (time.perf_counter() - t0)


def bench_store(store: str, env: dict[str, str], sizes: Sizes) -> list[Figure]:
    raw = RawApp(env=env)
    tally = _Tally()
    raw.save(tally)
    commands = sizes.threads * sizes.orders_per_thread * 4
    try:
        raw_saves(raw, tally, 20)
        raw_seconds = raw_saves(raw, tally, commands // 2)
        desk = Desk.open(env)
        try:
            grouped = run_load(desk, sizes, DEFAULT_MAX_GROUP)
            raw_seconds += raw_saves(raw, tally, commands // 2)
            single = run_load(desk, sizes, 1)
        finally:
            desk.app.close()
    finally:
        raw.close()
    raw_rate = (commands // 2 * 2) / raw_seconds
    if store == "sqlite":
        txn_rate = sqlite_txn_rate(Path(env["SQLITE_DBNAME"]).parent, commands)
    else:
        txn_rate = postgres_txn_rate(env["POSTGRES_SCHEMA"], commands)
    rate = grouped.commands / grouped.seconds
    single_rate = single.commands / single.seconds
    target = SQLITE_TARGET if store == "sqlite" else None
    return [
        Figure(
            f"group_commit_{store}_cmds_per_s",
            rate,
            "cmd/s",
            raw_rate,
            rate / raw_rate,
            target,
            ok=target is None or rate >= target,
            note=f"{sizes.threads} callers; ÷ raw eventsourcing saves/s",
        ),
        Figure(
            f"group_commit_{store}_vs_store_txn",
            rate,
            "cmd/s",
            txn_rate,
            rate / txn_rate,
            note="÷ one-INSERT transactions/s through the driver",
        ),
        Figure(
            f"one_txn_per_cmd_{store}_cmds_per_s",
            single_rate,
            "cmd/s",
            raw_rate,
            single_rate / raw_rate,
            note="same callers, groups of one",
        ),
        Figure(
            f"group_commit_{store}_cmds_per_txn",
            grouped.units / grouped.groups,
            "cmd/txn",
            note=f"{grouped.groups} transactions",
        ),
        Figure(
            f"group_commit_{store}_wait_p50_us",
            percentile(grouped.waits_us, 50),
            "us",
            note="caller's wait per command",
        ),
        Figure(
            f"group_commit_{store}_wait_p99_us",
            percentile(grouped.waits_us, 99),
            "us",
            note="caller's wait per command",
        ),
        Figure(f"raw_store_txn_{store}_per_s", txn_rate, "txn/s", note="floor"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small counts (smoke test)")
    parser.add_argument("--out", type=Path, help="also write the JSON list to this file")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    console = Console(width=max(140, Console().width))
    started = time.perf_counter()
    figures: list[Figure] = []
    for store, env in event_stores(console):
        figures += bench_store(store, env, sizes)
    mode = "quick" if args.quick else "full"
    return publish(
        console,
        figures,
        f"AIS group commit ({mode}, {time.perf_counter() - started:.1f} s)",
        args.out,
    )


if __name__ == "__main__":
    raise SystemExit(main())
