"""Wiring of the read side: the event source, the read store and the projector."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from adapters.event_log import StoredEventSource
from adapters.persistence import eventsourcing_env
from adapters.read_store import SqlReadStore
from adapters.rebuild_lanes import ReadSideSpec, process_lanes
from adapters.settings import Settings
from projections.registry import select
from projections.replay import ReplayResult, rebuild, verify
from projections.runner import Progress, Projector
from projections.spec import Projection

SCRATCH = "rs_"  # table prefix of the models `verify` rebuilds aside


@dataclass
class ReadSide:
    source: StoredEventSource
    store: SqlReadStore
    projections: list[Projection]
    spec: ReadSideSpec

    def projector(self, batch_size: int = 1000) -> Projector:
        return Projector(self.source, self.store, self.projections, batch_size=batch_size)

    def scratch(self) -> SqlReadStore:
        return SqlReadStore(self.store.engine, self.store.schema, prefix=SCRATCH)

    def rebuild(self, progress: Progress | None, workers: int) -> ReplayResult:
        """Every selected read model from position 0, in up to `workers` processes."""
        lanes = process_lanes(self.spec)
        return rebuild(
            self.source, self.store, self.projections, progress, lanes=workers, elsewhere=lanes
        )

    def verify(self, progress: Progress | None, workers: int) -> ReplayResult:
        """The live read models against a rebuild aside, in up to `workers` processes."""
        lanes = process_lanes(replace(self.spec, prefix=SCRATCH))
        scratch = self.scratch()
        return verify(
            self.source,
            self.store,
            scratch,
            self.projections,
            progress,
            lanes=workers,
            elsewhere=lanes,
        )


@contextmanager
def read_side(settings: Settings, names: list[str] | None = None) -> Iterator[ReadSide]:
    env = eventsourcing_env(settings.database_url, settings.home)
    spec = ReadSideSpec(env, settings.database_url, settings.home)
    source, store = spec.open()
    try:
        yield ReadSide(source, store, select(names), spec)
    finally:
        store.close()
        source.close()
