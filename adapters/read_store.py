"""SQLAlchemy read-model tables in the event store's own database (prefix `rm_`).

Every value is TEXT or INTEGER: money is the exact Decimal string, so the same log
gives the same bytes on SQLite and PostgreSQL. A projection's schema version is stored
with its tracking position; a different version drops its tables and rebuilds them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from eventsourcing.persistence import Tracking, TrackingRecorder
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    Table,
    Text,
    create_engine,
    event,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from adapters.settings import ConfigError
from projections.runner import TrackingConflict
from projections.spec import Projection, Row, Rows, TableSpec

APPLICATION = "ais"
WRITE = "ais_write"


def engines(database_url: str | None, home: Path) -> tuple[Engine, str | None]:
    """A SQLAlchemy engine for the same database the events live in, and its schema."""
    if not database_url:
        home.mkdir(parents=True, exist_ok=True)
        engine = create_engine(f"sqlite:///{home / 'ais.sqlite'}", connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _connect(dbapi: Any, _record: Any) -> None:
            dbapi.isolation_level = None  # we issue BEGIN IMMEDIATE ourselves
            dbapi.execute("PRAGMA journal_mode=WAL")
            dbapi.execute("PRAGMA busy_timeout=30000")

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            # Writers take the lock up front: a deferred transaction that reads and then
            # upgrades fails at once when another writer holds the lock, instead of waiting.
            writes = conn.get_execution_options().get(WRITE, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")

        return engine, None
    url = urlparse(database_url)
    if url.scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
        raise ConfigError(f"AIS_DATABASE_URL: unsupported scheme {url.scheme!r}")
    schema = parse_qs(url.query).get("schema", [None])[0]
    user = unquote(url.username or "postgres")
    password = f":{unquote(url.password)}" if url.password else ""
    dsn = f"postgresql+psycopg://{user}{password}@{url.hostname}:{url.port or 5432}{url.path}"
    return create_engine(dsn, pool_pre_ping=True), schema


class BatchRows:
    """Rows of one projection for one batch: read-through cache, writes kept until commit."""

    def __init__(self, conn: Connection, tables: dict[str, Table], specs: dict[str, TableSpec]):
        self.connection = conn
        self._tables = tables
        self._specs = specs
        self._cache: dict[str, dict[tuple[Any, ...], Row | None]] = {n: {} for n in specs}
        self._scanned: set[str] = set()
        self.dirty: dict[str, dict[tuple[Any, ...], Row]] = {n: {} for n in specs}

    def _key(self, table: str, row: Row) -> tuple[Any, ...]:
        return tuple(row[c] for c in self._specs[table].key)

    def get(self, table: str, key: tuple[Any, ...]) -> Row | None:
        cache = self._cache[table]
        if key not in cache and table not in self._scanned:
            t = self._tables[table]
            where = [t.c[c] == v for c, v in zip(self._specs[table].key, key, strict=True)]
            found = self.connection.execute(select(t).where(*where)).mappings().first()
            cache[key] = dict(found) if found else None
        row = cache.get(key)
        return dict(row) if row is not None else None

    def put(self, table: str, row: Row) -> None:
        key = self._key(table, row)
        self._cache[table][key] = dict(row)
        self.dirty[table][key] = dict(row)

    def scan(self, table: str) -> list[Row]:
        cache = self._cache[table]
        if table not in self._scanned:
            for found in self.connection.execute(select(self._tables[table])).mappings():
                cache.setdefault(self._key(table, dict(found)), dict(found))
            self._scanned.add(table)
        return [dict(row) for _, row in sorted(cache.items(), key=lambda kv: kv[0]) if row]


class SqlReadStore:
    """Read-model tables plus one tracking row per projection, in one database."""

    def __init__(self, engine: Engine, schema: str | None = None, prefix: str = "rm_"):
        self.engine = engine
        self.schema = schema
        self.prefix = prefix
        self.metadata = MetaData(schema=schema)
        self.tracking = Table(
            f"{prefix}tracking",
            self.metadata,
            Column("projection", Text, primary_key=True),
            Column("application", Text, nullable=False),
            Column("notification_id", Integer, nullable=False),
            Column("schema_version", Integer, nullable=False),
        )
        self._tables: dict[str, dict[str, Table]] = {}

    # --- tables ---------------------------------------------------------------------------
    def tables(self, projection: Projection) -> dict[str, Table]:
        if projection.name not in self._tables:
            self._tables[projection.name] = {
                spec.name: Table(
                    f"{self.prefix}{spec.name}",
                    self.metadata,
                    *(
                        Column(
                            c,
                            Integer if c in spec.integer_columns else Text,
                            primary_key=c in spec.key,
                        )
                        for c in spec.columns
                    ),
                )
                for spec in projection.tables
            }
        return self._tables[projection.name]

    def prepare(self, projection: Projection) -> bool:
        """Create missing tables; True when a schema change forced a rebuild from 0."""
        with self._writer() as conn:
            self.tracking.create(conn, checkfirst=True)
            found = conn.execute(
                select(self.tracking.c.schema_version).where(
                    self.tracking.c.projection == projection.name
                )
            ).scalar()
        if found == projection.version:
            with self._writer() as conn:
                for table in self.tables(projection).values():
                    table.create(conn, checkfirst=True)
            return False
        self.reset(projection)
        return found is not None

    def reset(self, projection: Projection) -> None:
        """Drop and recreate the projection's tables, tracking back at position 0."""
        with self._writer() as conn:
            self.tracking.create(conn, checkfirst=True)
            for table in self.tables(projection).values():
                table.drop(conn, checkfirst=True)
                table.create(conn)
            conn.execute(
                self.tracking.delete().where(self.tracking.c.projection == projection.name)
            )
            conn.execute(
                self.tracking.insert().values(
                    projection=projection.name,
                    application=APPLICATION,
                    notification_id=0,
                    schema_version=projection.version,
                )
            )

    def drop(self, projection: Projection) -> None:
        with self._writer() as conn:
            for table in self.tables(projection).values():
                table.drop(conn, checkfirst=True)
            conn.execute(
                self.tracking.delete().where(self.tracking.c.projection == projection.name)
            )

    @contextmanager
    def _writer(self) -> Iterator[Connection]:
        with self.engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
            yield conn

    # --- tracking ---------------------------------------------------------------------------
    def position(self, name: str) -> int:
        with self.engine.connect() as conn:
            found = conn.execute(
                select(self.tracking.c.notification_id).where(self.tracking.c.projection == name)
            ).scalar()
        return int(found or 0)

    def recorder(self, name: str) -> ProjectionTracking:
        return ProjectionTracking(self, name)

    # --- batches ----------------------------------------------------------------------------
    def rows(self, projection: Projection) -> BatchRows:
        """Open the batch's transaction: its reads and writes commit or vanish together."""
        conn = self.engine.connect().execution_options(**{WRITE: True})
        conn.begin()
        return BatchRows(conn, self.tables(projection), {s.name: s for s in projection.tables})

    def commit(self, projection: Projection, rows: Rows, *, position: int, expected: int) -> None:
        """Rows and tracking in one transaction; refused if tracking moved meanwhile."""
        assert isinstance(rows, BatchRows)
        tables = self.tables(projection)
        with rows.connection as conn:
            try:
                moved = conn.execute(
                    update(self.tracking)
                    .where(
                        self.tracking.c.projection == projection.name,
                        self.tracking.c.notification_id == expected,
                    )
                    .values(notification_id=position)
                ).rowcount
                if moved != 1:
                    raise TrackingConflict(projection.name)
                for name, dirty in rows.dirty.items():
                    if dirty:
                        self._upsert(conn, tables[name], list(dirty.values()))
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    def abort(self, rows: Rows) -> None:
        """Roll the batch back and give its connection up."""
        assert isinstance(rows, BatchRows)
        rows.connection.rollback()
        rows.connection.close()

    def _upsert(self, conn: Connection, table: Table, values: list[Row]) -> None:
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(table)
        keys = [c.name for c in table.primary_key.columns]
        others = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
        conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=others), values)

    # --- dumps --------------------------------------------------------------------------------
    def dump(self, projection: Projection) -> Iterator[tuple[str, Row]]:
        """Every row of every table, in primary-key order (byte order, on any database)."""
        with self.engine.connect() as conn:
            for spec in sorted(projection.tables, key=lambda s: s.name):
                table = self.tables(projection)[spec.name]
                order = [
                    table.c[c]
                    if c in spec.integer_columns
                    else table.c[c].collate("C")
                    if self.engine.dialect.name == "postgresql"
                    else table.c[c]
                    for c in spec.key
                ]
                rows = conn.execution_options(yield_per=5000).execute(
                    select(table).order_by(*order)
                )
                for row in rows.mappings():
                    yield spec.name, dict(row)

    def close(self) -> None:
        self.engine.dispose()


class ProjectionTracking(TrackingRecorder):
    """The eventsourcing TrackingRecorder view of one projection (for waiting on it)."""

    def __init__(self, store: SqlReadStore, projection: str) -> None:
        self.store = store
        self.projection = projection

    def insert_tracking(self, tracking: Tracking) -> None:
        with self.store._writer() as conn:
            conn.execute(
                update(self.store.tracking)
                .where(self.store.tracking.c.projection == self.projection)
                .values(notification_id=tracking.notification_id)
            )

    def max_tracking_id(self, application_name: str) -> int | None:
        return self.store.position(self.projection) or None


__all__ = ["BatchRows", "SqlReadStore", "engines", "text"]
