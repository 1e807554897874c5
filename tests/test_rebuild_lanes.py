"""A rebuild in lanes (worker processes, each reading only its topics) equals one in process."""

from __future__ import annotations

import multiprocessing
import random
from pathlib import Path
from typing import Any

import pytest

from adapters.clock import SimulatedClock
from adapters.persistence import eventsourcing_env
from adapters.read_store import SqlReadStore, engines
from adapters.rebuild_lanes import ReadSideSpec, process_lanes
from application.trading import TradingApp
from projections.digest import digests
from projections.lanes import lane_cost, plan_lanes
from projections.registry import all_projections
from projections.replay import Lanes, rebuild
from projections.spec import LoggedEvent, Projection, Rows, TableSpec
from tests.conftest import ReadModels
from tests.test_projections import play


def history(seed: int, steps: int) -> list[tuple[Any, ...]]:
    """A mixed trading history (see `play`): orders, partial fills, cancels, marks, drills."""
    rng = random.Random(seed)
    actions: list[tuple[Any, ...]] = []
    for _ in range(steps):
        pick = rng.random()
        instrument = rng.choice(["BTC-USDT", "ETH-USDT"])
        if pick < 0.3:
            actions.append(("order", instrument, rng.choice(["BUY", "SELL"]), rng.randint(1, 40)))
        elif pick < 0.55:
            actions.append(("fill", rng.randrange(100), rng.randint(10, 100)))
        elif pick < 0.65:
            actions.append(("cancel", rng.randrange(100)))
        elif pick < 0.9:
            actions.append(("mark", instrument, rng.randint(-80, 80)))
        elif pick < 0.95:
            actions.append(("kill", rng.random() < 0.5))
        else:
            actions.append(("time", rng.randint(1, 4000)))
    return actions


def test_lanes_in_worker_processes_rebuild_the_same_read_models(
    app: TradingApp,
    clock: SimulatedClock,
    read_models: ReadModels,
    store_url: str | None,
    tmp_path: Path,
) -> None:
    play(app, clock, read_models, history(seed=11, steps=80))
    source, projections = read_models.source, read_models.projections
    head = source.head()
    counts = source.topic_counts(head)
    assert len(plan_lanes(projections, counts, 3)) == 3  # the lanes below really split

    aside = SqlReadStore(read_models.store.engine, read_models.store.schema, "ra_")
    in_process = rebuild(source, aside, projections)
    home = tmp_path / "home"
    spec = ReadSideSpec(eventsourcing_env(store_url, home), store_url, home, prefix="rb_")
    engine, schema = engines(store_url, home)
    laned_store = SqlReadStore(engine, schema, "rb_")
    seen: list[int] = []
    laned = rebuild(
        source,
        laned_store,
        projections,
        lambda position, _head: seen.append(position),
        lanes=3,
        elsewhere=process_lanes(spec),
        lanes_from=0,
    )
    try:
        live = digests(read_models.store, projections)
        assert laned.digests == in_process.digests == live
        # every projection has seen the whole log, also those whose last events came early
        assert {laned_store.position(p.name) for p in projections} == {head}
        assert seen and seen[-1] == head
    finally:
        laned_store.close()


def lanes_aside(store_url: str | None, tmp_path: Path, workers: int) -> Lanes:
    """Worker processes for lanes rebuilding into scratch tables (`rs_`) of the test's store."""
    home = tmp_path / "home"
    spec = ReadSideSpec(eventsourcing_env(store_url, home), store_url, home, prefix="rs_")
    return process_lanes(spec)(workers)


def start_to_the_head(lanes: Lanes, read_models: ReadModels, plan: list[list[Projection]]) -> None:
    """Give the workers these lanes, up to the head of the test's log."""
    head = read_models.source.head()
    lanes.start(plan, read_models.source.topic_counts(head), head)


class Unregistered:
    """A cheap projection that a worker process cannot find by its name."""

    name = "unregistered"
    version = 1
    tables: tuple[TableSpec, ...] = (TableSpec("unregistered", ("id",), ("id",), ("id",)),)

    def wants(self, kind: str) -> bool:
        return kind == "TradingSession.Started"

    def handle(self, event: LoggedEvent, rows: Rows) -> None:
        rows.put("unregistered", {"id": event.position})


def test_a_failing_lane_fails_the_rebuild_with_its_own_error(
    app: TradingApp,
    clock: SimulatedClock,
    read_models: ReadModels,
    store_url: str | None,
    tmp_path: Path,
) -> None:
    play(app, clock, read_models, history(seed=3, steps=20))
    lanes = lanes_aside(store_url, tmp_path, workers=2)
    start_to_the_head(lanes, read_models, [[Unregistered()], read_models.projections[:1]])
    with pytest.raises(ValueError, match="unknown projection 'unregistered'"):
        lanes.wait(None)


COUNTS = {
    "domain.risk_desk:RiskDesk.CommandApproved": 4300,
    "domain.risk_desk:RiskDesk.MarkObserved": 1280,
    "domain.position:Position.FillApplied": 857,
    "domain.position:Position.Opened": 6,
    "domain.order:Order.Placed": 767,
    "domain.order:Order.Filled": 857,
    "domain.session:TradingSession.Started": 3,
}


def test_a_lane_plan_holds_every_projection_once_and_is_near_the_best_split() -> None:
    projections = all_projections()
    for n in (1, 2, 3, 4, 10):
        plan = plan_lanes(projections, COUNTS, n)
        names = [p.name for lane in plan for p in lane]
        assert sorted(names) == sorted(p.name for p in projections)  # each exactly once
        assert 1 <= len(plan) <= n
        costs = [lane_cost(lane, COUNTS) for lane in plan]
        assert costs == sorted(costs, reverse=True)
    best = min(  # every split in two, the first projection always in the first lane
        max(lane_cost(lane, COUNTS) for lane in split if lane)
        for mask in range(2 ** (len(projections) - 1))
        for split in [
            [
                [p for i, p in enumerate(projections) if not (mask << 1) >> i & 1],
                [p for i, p in enumerate(projections) if (mask << 1) >> i & 1],
            ]
        ]
    )
    found = max(lane_cost(lane, COUNTS) for lane in plan_lanes(projections, COUNTS, 2))
    assert found <= 1.05 * best


def test_projections_reading_the_same_events_share_a_lane_when_it_is_free() -> None:
    counts = {**COUNTS, "domain.risk_desk:RiskDesk.CommandApproved": 1_000_000}
    plan = plan_lanes(all_projections(), counts, 2)
    alone, rest = sorted(plan, key=len)
    assert [p.name for p in alone] == ["risk_decisions"]  # the dearest, alone
    assert {"portfolio", "exposure"} <= {p.name for p in rest}  # the book events, read once


def test_a_killed_lane_process_fails_the_rebuild_instead_of_hanging_it(
    app: TradingApp,
    clock: SimulatedClock,
    read_models: ReadModels,
    store_url: str | None,
    tmp_path: Path,
) -> None:
    play(app, clock, read_models, history(seed=5, steps=10))
    lanes = lanes_aside(store_url, tmp_path, workers=1)
    (worker,) = [p for p in multiprocessing.active_children() if p.name == "ais-rebuild-lane-1"]
    worker.kill()  # as the kernel's OOM killer would
    worker.join()
    start_to_the_head(lanes, read_models, [read_models.projections[:1]])
    with pytest.raises(RuntimeError, match=r"ais-rebuild-lane-1 ended \(exit code -9\)"):
        lanes.wait(None)
