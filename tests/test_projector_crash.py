"""Crash safety of the projector: `ais project --follow` killed with SIGKILL, again and again.

A real TradingApp writes a realistic log (order lifecycles with partial fills, cancels,
rejections, marks, exchange snapshots, a kill-switch drill, a UTC day change) and keeps
appending to it while a projector process is started and SIGKILLed at seeded random
moments: while opening its stores, mid-batch, between the commits of one batch's
projections, while idle. A final `ais project` then brings the read models to the head.
The contract (DESIGN.md, "Projections"): rows and tracking position commit in one
transaction, so the result equals a clean rebuild from position 0 -- no event skipped,
none applied twice."""

from __future__ import annotations

import importlib
import multiprocessing
import multiprocessing.context
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import func, inspect, select

from adapters.clock import SimulatedClock
from adapters.read_store import SqlReadStore
from application.errors import RiskRejected
from application.trading import TradingApp
from domain.commands import AcknowledgeOrder, CancelOrder, PlaceOrder, SubmitOrder
from domain.values import OrderType, Side
from projections.digest import combined, digests
from projections.replay import verify
from projections.spec import Projection
from tests.conftest import SECRET, AppFactory, ReadModels, all_events, kinds, start_session

ROOT = Path(__file__).resolve().parents[1]
SEED = 20240102
KILLS = 24  # the done-when item asks for at least 20
INITIAL_LIFECYCLES = 200  # written before the first projector starts
BATCH = "25"  # small batches: many commits, so kills land between and inside them

BTC, ETH = "BTC-USDT", "ETH-USDT"
TICK = Decimal("0.01")
LOT = {BTC: Decimal("0.001"), ETH: Decimal("0.01")}  # coarser than the venue's, >= 5 USDT
MAX_HELD = {BTC: Decimal("0.1"), ETH: Decimal("1.5")}  # about 5 % of NAV: under the 10 %
FEE_RATE = Decimal("0.001")

# The events the risk_decisions read model turns into exactly one row each.
DECISION_KINDS = frozenset(
    {
        "RiskDesk.CommandApproved",
        "RiskDesk.CommandRejected",
        "RiskDesk.KillSwitchEngaged",
        "RiskDesk.KillSwitchReset",
        "RiskDesk.ReducingEntered",
        "RiskDesk.LimitsChanged",
    }
)


class Trader:
    """Drives the real TradingApp through seeded order lifecycles within the risk limits.

    Limit orders at the mark (inside the price collar), positions kept under half the
    weight limit, the clock advanced 11 s per order (under the rate limit, outside the
    duplicate window), both marks refreshed before every order (never stale).
    """

    def __init__(self, app: TradingApp, clock: SimulatedClock, rng: random.Random) -> None:
        self.app = app
        self.clock = clock
        self.rng = rng
        self.session_id = start_session(app)
        self.marks = {BTC: Decimal(50000), ETH: Decimal(3000)}
        self.held = {BTC: Decimal(0), ETH: Decimal(0)}
        self.cash = Decimal(100000)
        self.count = 0
        self.trades = 0

    def observe_marks(self) -> None:
        for instrument, mark in self.marks.items():
            step = Decimal(self.rng.randint(-20, 20)) / 10_000  # at most 0.2 % per step
            self.marks[instrument] = (mark * (1 + step)).quantize(TICK)
            self.app.observe_mark(instrument, self.marks[instrument])

    def lifecycle(self) -> None:
        """One order from placement to its end; every 40th a drill, every 23rd a rejection."""
        if self.count % 25 == 0:
            self.snapshot()
        self.count += 1
        self.clock.advance(11)  # outside the 10 s duplicate window, under 30 orders a minute
        if self.count == 90:
            self.clock.advance(15 * 3600)  # cross a UTC day: the daily P&L rolls over
        self.observe_marks()
        instrument = self.rng.choice((BTC, ETH))
        if self.count % 23 == 0:
            self.rejected(instrument)
            return
        side, quantity = self.choose(instrument)
        order_id = self.app.ids()
        self.app.execute(
            PlaceOrder(
                order_id=order_id,
                session_id=self.session_id,
                instrument=instrument,
                side=side,
                order_type=OrderType.LIMIT,
                quantity=quantity,
                limit_price=self.marks[instrument],
            )
        )
        self.app.execute(SubmitOrder(order_id=order_id, client_order_id=f"c{self.count}"))
        self.app.execute(AcknowledgeOrder(order_id=order_id, exchange_order_id=f"x{self.count}"))
        if self.count % 40 == 0:
            # The kill switch cancels the open order through an approved CancelOrder.
            self.app.engage_kill_switch(reason="crash-test drill", by="tester")
            self.app.reset_kill_switch(reason="drill over", by="tester")
            return
        outcome = self.rng.random()
        if outcome < 0.12:
            self.app.execute(CancelOrder(order_id=order_id, reason="changed my mind"))
            return
        part = self.part(instrument, quantity)
        if outcome < 0.25 and part < quantity:
            self.fill(order_id, instrument, side, part)
            self.app.execute(CancelOrder(order_id=order_id, reason="rest canceled"))
            return
        left = quantity
        for _ in range(self.rng.randint(0, 2)):  # partial fills first, then the rest
            part = self.part(instrument, left)
            if part >= left:
                break
            self.fill(order_id, instrument, side, part)
            left -= part
        self.fill(order_id, instrument, side, left)

    def choose(self, instrument: str) -> tuple[Side, Decimal]:
        lot, held = LOT[instrument], self.held[instrument]
        if held > 0 and (held + 20 * lot > MAX_HELD[instrument] or self.rng.random() < 0.4):
            half = (held / 2).quantize(lot)
            return Side.SELL, held if half < lot or self.rng.random() < 0.5 else half
        return Side.BUY, lot * self.rng.randint(1, 20)

    def part(self, instrument: str, quantity: Decimal) -> Decimal:
        lots = int(quantity / LOT[instrument])
        return LOT[instrument] * max(1, self.rng.randint(1, max(1, lots)) // 2)

    def fill(self, order_id: UUID, instrument: str, side: Side, quantity: Decimal) -> None:
        self.clock.advance(self.rng.choice((0, 1)))
        self.trades += 1
        price = self.marks[instrument]
        fee = (quantity * price * FEE_RATE).quantize(TICK)
        assert self.app.record_fill(
            order_id,
            trade_id=f"t{self.trades}",
            quantity=quantity,
            price=price,
            fee=fee,
            filled_at=self.clock(),
        )
        self.held[instrument] += side.sign * quantity
        self.cash -= side.sign * quantity * price + fee

    def snapshot(self) -> None:
        """What the venue reports between orders: our balances, nothing open."""
        balances = {"USDT": self.cash, "BTC": self.held[BTC], "ETH": self.held[ETH]}
        self.app.record_exchange_snapshot(
            "paper",
            balances={asset: {"total": str(value)} for asset, value in balances.items()},
            positions=[],
            open_orders=[],
        )

    def rejected(self, instrument: str) -> None:
        """Above the mandate's largest order: the desk records a CommandRejected only."""
        with pytest.raises(RiskRejected, match="max_order_quantity"):
            self.app.execute(
                PlaceOrder(
                    order_id=self.app.ids(),
                    session_id=self.session_id,
                    instrument=instrument,
                    side=Side.BUY,
                    order_type=OrderType.LIMIT,
                    quantity=Decimal(100),
                    limit_price=self.marks[instrument],
                )
            )


@dataclass(frozen=True)
class Kill:
    """What the read side looked like right after one SIGKILL."""

    delay: float
    positions: dict[str, int]
    head: int

    @property
    def behind(self) -> bool:
        return min(self.positions.values()) < self.head


def cli_env(store_url: str | None, home: Path) -> dict[str, str]:
    """The subprocess sees only the store under test: other AIS_* variables are dropped."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIS_")}
    env.update(AIS_HOME=str(home), AIS_RISK_HMAC_KEYS=f"k1:{SECRET}", COLUMNS="200")
    if store_url:
        env["AIS_DATABASE_URL"] = store_url
    return env


def run_cli(argv: list[str], env: dict[str, str], log: str) -> None:
    """Child process: the real `ais` entry point (`interfaces.cli.main`) with these arguments."""
    os.environ.clear()
    os.environ.update(env)
    os.chdir(ROOT)
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(out, 1)
    os.dup2(out, 2)
    sys.argv = ["ais", *argv]
    importlib.import_module("interfaces.cli").main()  # preloaded by the fork server


def forkserver() -> multiprocessing.context.ForkServerContext:
    """Projector processes forked from a server that has imported the CLI once.

    Importing `interfaces.cli` takes seconds (more on a loaded machine), which would
    make 20+ restarts slow and leave few kills landing after start-up. A forked child is
    still a separate process with its own connections, killed with a real SIGKILL.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["interfaces.cli", __name__])
    return context


def rows_and_position(store: SqlReadStore, projection: Projection, table: str) -> tuple[int, int]:
    """(tracking position, row count), read in one statement and so in one snapshot."""
    names = set(inspect(store.engine).get_table_names(schema=store.schema))
    if {store.tracking.name, f"{store.prefix}{table}"} - names:
        return 0, 0  # killed before the tables were created
    tracking = store.tracking.c
    stmt = select(
        select(tracking.notification_id)
        .where(tracking.projection == projection.name)
        .scalar_subquery(),
        select(func.count()).select_from(store.tables(projection)[table]).scalar_subquery(),
    )
    with store.engine.connect() as conn:
        position, count = conn.execute(stmt).one()
    return int(position or 0), int(count)


def of_kind(events: list[Any], wanted: Collection[str]) -> list[Any]:
    return [n for n, k in zip(events, kinds(events), strict=True) if k in wanted]


def assert_batches_atomic(models: ReadModels, events: list[Any]) -> None:
    """Committed rows match the committed position: no half-applied batch survives a kill."""
    by_name = {p.name: p for p in models.projections}
    for table, wanted in (("orders", {"Order.Placed"}), ("risk_decisions", DECISION_KINDS)):
        position, count = rows_and_position(models.store, by_name[table], table)
        expected = sum(1 for n in of_kind(events, wanted) if n.id <= position)
        assert count == expected, f"{table}: {count} rows at tracking position {position}"


@pytest.mark.parametrize(
    "store_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_projector_killed_at_random_points_ends_equal_to_a_clean_rebuild(
    store_url: str | None,
    make_app: AppFactory,
    clock: SimulatedClock,
    read_models: ReadModels,
    tmp_path: Path,
) -> None:
    """SIGKILL a following projector >= 20 times while the log grows; then compare.

    Checked after every kill: tracking never goes back, and committed rows match the
    committed position. At the end: every position at the head, live digests equal to a
    rebuild's (row by row), and row counts derived from the log alone.
    """
    began = time.monotonic()
    trader = Trader(make_app(), clock, random.Random(SEED))
    schedule = random.Random(SEED + 1)  # apart from the trader's: same kill plan every run
    for _ in range(INITIAL_LIFECYCLES):
        trader.lifecycle()
    env = cli_env(store_url, tmp_path / "home")
    log = tmp_path / "projector.log"

    context = forkserver()
    started = time.monotonic()
    warm_up = context.Process(target=run_cli, args=(["--help"], env, os.devnull))
    warm_up.start()
    warm_up.join(timeout=120)
    assert warm_up.exitcode == 0
    warm_up.close()
    print(
        f"log written in {started - began:.1f}s, CLI imported in {time.monotonic() - started:.1f}s"
    )

    kills: list[Kill] = []
    for round_ in range(KILLS):
        # From a few milliseconds (opening the stores, preparing tables) to over a second
        # (batches projected, or caught up and idle).
        delay = schedule.uniform(0.02, 1.2)
        # Half the rounds append to the log right up to the kill, so the projector is
        # killed while catching up; the other half kill a projector left alone.
        writing = schedule.uniform(0.1, 0.6) if schedule.random() < 0.5 else 0.0
        argv = ["project", "--follow", "--batch-size", BATCH]
        proc = context.Process(target=run_cli, args=(argv, env, str(log)))
        proc.start()
        deadline = time.monotonic() + delay
        time.sleep(max(0.0, deadline - writing - time.monotonic()))
        while writing and time.monotonic() < deadline:
            trader.lifecycle()
        time.sleep(max(0.0, deadline - time.monotonic()))
        assert proc.is_alive(), f"projector exited by itself ({proc.exitcode}): {log.read_text()}"
        proc.kill()
        proc.join(timeout=30)
        assert proc.exitcode == -signal.SIGKILL
        proc.close()
        kill = Kill(
            delay,
            {p.name: read_models.store.position(p.name) for p in read_models.projections},
            read_models.source.head(),
        )
        if kills:
            previous = kills[-1].positions
            assert all(kill.positions[n] >= previous[n] for n in previous), (
                f"round {round_}: tracking went backwards"
            )
        kills.append(kill)
        print(f"kill {round_} after {delay:.2f}s: head {kill.head}, tracking {kill.positions}")
        assert_batches_atomic(read_models, all_events(trader.app))

    print(f"kills done after {time.monotonic() - began:.1f}s")
    final = subprocess.run(
        [sys.executable, "-m", "interfaces.cli", "project"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert final.returncode == 0, final.stderr
    assert "Traceback" not in log.read_text()

    assert len(kills) >= 20
    behind = [k for k in kills if k.behind]
    assert behind, "no kill landed while the projector was behind the head"
    assert any(min(k.positions.values()) > 0 for k in behind), "never killed mid-log"

    events = all_events(trader.app)
    head = events[-1].id
    assert read_models.source.head() == head
    models, store = read_models.projections, read_models.store
    assert {p.name: store.position(p.name) for p in models} == dict.fromkeys(
        (p.name for p in models), head
    )
    live = digests(store, models)
    result = verify(read_models.source, store, read_models.scratch(), models)
    assert result.difference is None, result.difference.describe()
    assert result.digests == live
    assert result.digest == combined(live)

    # Independently of the projector's code: one row per event that makes one, and
    # each order's row reflects all of its events, each once.
    orders = {r["order_id"]: r for r in read_models.rows("orders")}
    placed = of_kind(events, {"Order.Placed"})
    assert len(orders) == len(placed) == len({str(n.originator_id) for n in placed})
    assert set(orders) == {str(n.originator_id) for n in placed}
    last_version = {str(n.originator_id): n.originator_version for n in events}
    assert all(r["version"] == last_version[order_id] for order_id, r in orders.items())
    decode = trader.app.mapper.transcoder.decode
    filled = dict.fromkeys(orders, Decimal(0))
    for n in of_kind(events, {"Order.Filled"}):
        filled[str(n.originator_id)] += Decimal(str(decode(n.state)["quantity"]))
    assert {k: Decimal(r["filled_quantity"]) for k, r in orders.items()} == filled
    decisions = read_models.rows("risk_decisions")
    assert sorted(r["position"] for r in decisions) == [
        n.id for n in of_kind(events, DECISION_KINDS)
    ]
    counts = Counter(kinds(events))
    assert counts["RiskDesk.CommandRejected"] > 0 and counts["RiskDesk.KillSwitchEngaged"] > 0
    assert counts["Order.Filled"] > counts["Order.Placed"] > 100 and counts["Order.Canceled"]
    assert counts["ExchangeAccount.SnapshotRecorded"] > 0
    split = [k for k in kills if len(set(k.positions.values())) > 1]
    print(
        f"{len(events)} events, {len(kills)} kills, {len(behind)} behind the head, "
        f"{len(split)} between the projections of one batch, "
        f"{time.monotonic() - began:.1f}s in all"
    )
