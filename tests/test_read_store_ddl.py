"""Read-model DDL when several processes start together on a fresh PostgreSQL schema."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import inspect

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
