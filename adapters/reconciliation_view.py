"""The ReconciliationView port on the read store: catch the projection up, read its rows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select

from adapters.event_log import StoredEventSource
from adapters.read_store import SqlReadStore, engines
from application.ports import ReconciliationItem, ReconciliationReport
from projections.reconciliation import ReconciliationProjection
from projections.runner import EventSource, Projector


class ProjectedReconciliation:
    @staticmethod
    @contextmanager
    def opened(
        store_env: dict[str, str], database_url: str | None, home: Path
    ) -> Iterator[ProjectedReconciliation]:
        """On the event store's own database (`store_env`, the process's eventsourcing
        environment for it), closed on exit."""
        engine, schema = engines(database_url, home)
        source = StoredEventSource(store_env)
        store = SqlReadStore(engine, schema)
        try:
            yield ProjectedReconciliation(source, store)
        finally:
            store.close()
            source.close()

    def __init__(self, source: EventSource, store: SqlReadStore) -> None:
        self.store = store
        self.projection = ReconciliationProjection()
        self.projector = Projector(source, store, [self.projection])

    def report(self, venue: str, snapshot: int) -> ReconciliationReport | None:
        self.projector.run_once()
        return self._read(venue, snapshot)

    def latest(self, venue: str) -> ReconciliationReport | None:
        self.projector.run_once()
        results = self.store.tables(self.projection)["reconciliation"]
        with self.store.engine.connect() as conn:
            snapshot = conn.execute(
                select(results.c.snapshot)
                .where(results.c.venue == venue)
                .order_by(results.c.snapshot.desc())
                .limit(1)
            ).scalar()
        return None if snapshot is None else self._read(venue, int(snapshot))

    def _read(self, venue: str, snapshot: int) -> ReconciliationReport | None:
        tables = self.store.tables(self.projection)
        results, items = tables["reconciliation"], tables["reconciliation_items"]
        with self.store.engine.connect() as conn:
            head: Any = (
                conn.execute(
                    select(results).where(results.c.venue == venue, results.c.snapshot == snapshot)
                )
                .mappings()
                .first()
            )
            if head is None:
                return None
            rows = conn.execute(
                select(items)
                .where(items.c.venue == venue, items.c.snapshot == snapshot)
                .order_by(items.c.kind, items.c.item)
            ).mappings()
            found = tuple(
                ReconciliationItem(
                    kind=r["kind"],
                    item=r["item"],
                    expected=r["expected"],
                    observed=r["observed"],
                    difference=r["difference"],
                    status=r["status"],
                    note=r["note"],
                    action=r["action"],
                )
                for r in rows
            )
        return ReconciliationReport(
            venue=venue,
            snapshot=snapshot,
            taken_at=head["taken_at"],
            status=head["status"],
            items=found,
        )
