"""Wiring of the read side: the event source, the read store and the projector."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from adapters.event_log import StoredEventSource
from adapters.persistence import eventsourcing_env
from adapters.read_store import SqlReadStore, engines
from adapters.settings import Settings
from projections.registry import select
from projections.runner import Projector
from projections.spec import Projection


@dataclass
class ReadSide:
    source: StoredEventSource
    store: SqlReadStore
    projections: list[Projection]

    def projector(self, batch_size: int = 1000) -> Projector:
        return Projector(self.source, self.store, self.projections, batch_size=batch_size)

    def scratch(self) -> SqlReadStore:
        return SqlReadStore(self.store.engine, self.store.schema, prefix="rs_")


@contextmanager
def read_side(settings: Settings, names: list[str] | None = None) -> Iterator[ReadSide]:
    engine, schema = engines(settings.database_url, settings.home)
    source = StoredEventSource(eventsourcing_env(settings.database_url, settings.home))
    store = SqlReadStore(engine, schema)
    try:
        yield ReadSide(source, store, select(names))
    finally:
        store.close()
        source.close()
