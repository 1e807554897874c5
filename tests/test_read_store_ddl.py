"""Store DDL when several processes start together on a fresh PostgreSQL schema."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import inspect

from adapters.event_log import EventLog
from adapters.persistence import eventsourcing_env
from adapters.read_store import SqlReadStore, engines
from projections.registry import all_projections

STARTERS = 4


def test_concurrent_prepare_on_a_fresh_schema_all_succeed(pg_url: str, tmp_path: Path) -> None:
    """Four starters, released together, each on its own engine (its own connections):
    every prepare succeeds, and none resets another's tables (no rebuild reported)."""
    projections = all_projections()
    stores = [SqlReadStore(*engines(pg_url, tmp_path)) for _ in range(STARTERS)]
    together = threading.Barrier(STARTERS)

    def start(store: SqlReadStore) -> list[bool]:
        together.wait(timeout=30)
        return [store.prepare(p) for p in projections]

    try:
        with ThreadPoolExecutor(STARTERS) as pool:
            rebuilt = list(pool.map(start, stores))
        assert rebuilt == [[False] * len(projections)] * STARTERS
        first = stores[0]
        assert {first.position(p.name) for p in projections} == {0}
        made = set(inspect(first.engine).get_table_names(schema=first.schema))
        wanted = {t.name for p in projections for t in first.tables(p).values()}
        assert wanted | {first.tracking.name} <= made
    finally:
        for store in stores:
            store.close()


def test_concurrent_event_stores_on_a_fresh_schema_all_open(pg_url: str, tmp_path: Path) -> None:
    """Starters opening the event store together each create its tables and replace its
    `insert_events` function; without taking turns one fails ("tuple concurrently
    updated"). All must open and see the same empty log."""
    env = eventsourcing_env(pg_url, tmp_path)
    together = threading.Barrier(STARTERS)

    def start(_: int) -> int:
        together.wait(timeout=30)
        log = EventLog(env)
        try:
            return log.recorder.max_notification_id() or 0
        finally:
            log.close()

    for _ in range(3):  # the race is narrow: give it a few chances on fresh starts
        with ThreadPoolExecutor(STARTERS) as pool:
            assert list(pool.map(start, range(STARTERS))) == [0] * STARTERS
