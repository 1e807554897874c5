"""eventsourcing's PostgreSQL persistence, with table creation serialized across processes.

Every process that opens the store (the loop, each projector, each API replica, the CLI)
lets the library create its tables, indexes and `insert_events` function. Those are
idempotent one at a time, but two processes starting together run `CREATE OR REPLACE
FUNCTION` on the same function at once and one of them fails with "tuple concurrently
updated". A PostgreSQL advisory lock per schema makes them take turns.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from eventsourcing import postgres

from adapters.lease import advisory_key


@contextmanager
def _one_creator_at_a_time(datastore: postgres.PostgresDatastore) -> Iterator[None]:
    key = advisory_key("ais-event-store-ddl", datastore.schema)
    with datastore.get_connection() as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


class ApplicationRecorder(postgres.PostgresApplicationRecorder):
    def create_table(self) -> None:
        with _one_creator_at_a_time(self.datastore):
            super().create_table()


class AggregateRecorder(postgres.PostgresAggregateRecorder):
    """The snapshot store's recorder."""

    def create_table(self) -> None:
        with _one_creator_at_a_time(self.datastore):
            super().create_table()


class Factory(postgres.PostgresFactory):
    application_recorder_class = ApplicationRecorder
    aggregate_recorder_class = AggregateRecorder
