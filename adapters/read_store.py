"""SQLAlchemy read-model tables in the event store's own database (prefix `rm_`).

Every value is TEXT or INTEGER: money is the exact Decimal string, so the same log
gives the same bytes on SQLite and PostgreSQL. A projection's schema version is stored
with its tracking position; a different version drops its tables and rebuilds them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from operator import itemgetter
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

from adapters.config_error import ConfigError
from adapters.lease import advisory_key
from projections.runner import TrackingConflict
from projections.spec import Projection, Row, Rows, TableSpec

APPLICATION = "ais"
WRITE = "ais_write"
CACHE_ROWS = 50_000  # rows kept between batches per projection; beyond, start afresh
DUMP_CHUNK = 5000  # rows a dump fetches at a time


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
            # Read models are derived data committed with their tracking position: a
            # commit lost to a power cut (never to a killed process) is projected again,
            # so they need not wait for an fsync per batch as the event log does.
            dbapi.execute("PRAGMA synchronous=NORMAL")

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


class RowCache:
    """A projection's rows as its last committed batch left them, kept across batches.

    Valid only while nobody else has written the projection: `SqlReadStore.rows` checks
    that its tracking position is still the one this cache was committed at, and a
    commit guarded by the same position can never publish rows read from a stale cache.
    """

    def __init__(self, tables: Iterable[str], position: int) -> None:
        self.position = position
        self.rows: dict[str, dict[tuple[Any, ...], Row | None]] = {n: {} for n in tables}
        self.scanned: set[str] = set()

    def size(self) -> int:
        return sum(len(rows) for rows in self.rows.values())


class TableSql:
    """Driver-level statements for one table, built once: rebuilding runs them per row."""

    def __init__(self, engine: Engine, table: Table, spec: TableSpec) -> None:
        prep = engine.dialect.identifier_preparer
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self.columns = spec.columns
        name = prep.format_table(table)
        cols = ", ".join(prep.quote(c) for c in spec.columns)
        keys = ", ".join(prep.quote(c) for c in spec.key)
        others = [prep.quote(c) for c in spec.columns if c not in spec.key]
        action = (
            "UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in others)
            if others
            else "NOTHING"
        )
        self.upsert = (
            f"INSERT INTO {name} ({cols}) VALUES ({', '.join([mark] * len(spec.columns))}) "
            f"ON CONFLICT ({keys}) DO {action}"
        )
        where = " AND ".join(f"{prep.quote(c)} = {mark}" for c in spec.key)
        self.select = f"SELECT {cols} FROM {name} WHERE {where}"
        # byte order on any database: PostgreSQL's text ordering follows its locale
        collate = ' COLLATE "C"' if engine.dialect.name == "postgresql" else ""
        order = ", ".join(
            prep.quote(c) + ("" if c in spec.integer_columns else collate) for c in spec.key
        )
        self.dump = f"SELECT {cols} FROM {name} ORDER BY {order}"
        # C-level getters: a rebuild runs them for every row it writes
        self.key_of: Callable[[Row], tuple[Any, ...]] = _getter(spec.key)
        self._values = _getter(spec.columns)

    def values(self, rows: Iterable[Row]) -> list[tuple[Any, ...]]:
        return list(map(self._values, rows))


def _getter(columns: tuple[str, ...]) -> Callable[[Row], tuple[Any, ...]]:
    """A row's values of `columns`, as a tuple even for one column."""
    if len(columns) > 1:
        return itemgetter(*columns)
    (column,) = columns
    return lambda row: (row[column],)


class BatchRows:
    """Rows of one projection for one batch: read-through cache, writes kept until commit."""

    def __init__(
        self,
        conn: Connection,
        tables: dict[str, Table],
        sql: dict[str, TableSql],
        cache: RowCache,
    ) -> None:
        self.connection = conn
        self.cache = cache
        self._tables = tables
        self._sql = sql
        self.dirty: dict[str, dict[tuple[Any, ...], Row]] = {n: {} for n in sql}
        # per table, what `put` needs, looked up once per batch rather than once per row
        self._puts = {n: (sql[n].key_of, cache.rows[n], self.dirty[n]) for n in sql}

    def get(self, table: str, key: tuple[Any, ...]) -> Row | None:
        cache = self.cache.rows[table]
        row = cache.get(key)
        if row is None and key not in cache and table not in self.cache.scanned:
            sql = self._sql[table]
            found = self.connection.exec_driver_sql(sql.select, key).first()
            row = cache[key] = dict(zip(sql.columns, found, strict=True)) if found else None
        return dict(row) if row is not None else None

    def put(self, table: str, row: Row) -> None:
        key_of, cached, dirty = self._puts[table]
        kept = dict(row)  # one private copy: `get` hands out copies of it
        key = key_of(kept)
        cached[key] = dirty[key] = kept

    def scan(self, table: str) -> list[Row]:
        cache = self.cache.rows[table]
        if table not in self.cache.scanned:
            sql = self._sql[table]
            for found in self.connection.execute(select(self._tables[table])).mappings():
                row = dict(found)
                cache.setdefault(sql.key_of(row), row)
            self.cache.scanned.add(table)
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
        self._sql: dict[str, dict[str, TableSql]] = {}
        self._caches: dict[str, RowCache] = {}

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
            tables = self._tables[projection.name]
            self._sql[projection.name] = {
                spec.name: TableSql(self.engine, tables[spec.name], spec)
                for spec in projection.tables
            }
        return self._tables[projection.name]

    def prepare(self, projection: Projection) -> bool:
        """Create missing tables; True when a schema change forced a rebuild from 0.

        Check and change are one DDL transaction, so processes starting together on a
        fresh schema neither collide on CREATE TABLE nor reset each other's work.
        """
        with self._ddl() as conn:
            self.tracking.create(conn, checkfirst=True)
            found = conn.execute(
                select(self.tracking.c.schema_version).where(
                    self.tracking.c.projection == projection.name
                )
            ).scalar()
            if found == projection.version:
                for table in self.tables(projection).values():
                    table.create(conn, checkfirst=True)
                return False
            self._reset(conn, projection)
        return found is not None

    def reset(self, projection: Projection) -> None:
        """Drop and recreate the projection's tables, tracking back at position 0."""
        with self._ddl() as conn:
            self._reset(conn, projection)

    def _reset(self, conn: Connection, projection: Projection) -> None:
        self.tracking.create(conn, checkfirst=True)
        for table in self.tables(projection).values():
            table.drop(conn, checkfirst=True)
            table.create(conn)
        conn.execute(self.tracking.delete().where(self.tracking.c.projection == projection.name))
        conn.execute(
            self.tracking.insert().values(
                projection=projection.name,
                application=APPLICATION,
                notification_id=0,
                schema_version=projection.version,
            )
        )

    def drop(self, projection: Projection) -> None:
        with self._ddl() as conn:
            for table in self.tables(projection).values():
                table.drop(conn, checkfirst=True)
            conn.execute(
                self.tracking.delete().where(self.tracking.c.projection == projection.name)
            )

    @contextmanager
    def _writer(self) -> Iterator[Connection]:
        with self.engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
            yield conn

    @contextmanager
    def _ddl(self) -> Iterator[Connection]:
        """A write transaction that, on PostgreSQL, holds this schema's DDL lock until it
        ends (SQLite's BEGIN IMMEDIATE already lets one writer in at a time)."""
        with self._writer() as conn:
            if self.engine.dialect.name == "postgresql":
                key = advisory_key("ais-read-store-ddl", self.schema or "", self.prefix)
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
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
        """Open the batch's read transaction; `commit` writes in a transaction of its own.

        The batch is handled without holding the write lock (on SQLite, one for the whole
        database), so projectors of other read models, and the event writers, are not
        held up by it. What the batch read stays valid up to its commit: the commit is
        refused unless the tracking position is still the one the batch started from,
        and only commits that move that position write this projection's rows.

        The rows the previous batch committed are reused when the projection's tracking
        position shows that nobody else has written it since.
        """
        tables = self.tables(projection)
        conn = self.engine.connect()
        conn.begin()
        tracked = conn.execute(
            select(self.tracking.c.notification_id).where(
                self.tracking.c.projection == projection.name
            )
        ).scalar()
        cache = self._caches.pop(projection.name, None)
        if cache is None or cache.position != tracked or cache.size() > CACHE_ROWS:
            cache = RowCache(tables, int(tracked or 0))
        return BatchRows(conn, tables, self._sql[projection.name], cache)

    def commit(self, projection: Projection, rows: Rows, *, position: int, expected: int) -> None:
        """Rows and tracking in one transaction; refused if tracking moved meanwhile."""
        assert isinstance(rows, BatchRows)
        sql = self._sql[projection.name]
        with rows.connection as conn:
            conn.rollback()  # the batch only read: end its snapshot, then take the lock
            conn.execution_options(**{WRITE: True})
            conn.begin()
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
                        conn.exec_driver_sql(sql[name].upsert, sql[name].values(dirty.values()))
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
        rows.cache.position = position
        self._caches[projection.name] = rows.cache

    def abort(self, rows: Rows) -> None:
        """Roll the batch back and give its connection up (its cached rows go too)."""
        assert isinstance(rows, BatchRows)
        rows.connection.rollback()
        rows.connection.close()

    # --- dumps --------------------------------------------------------------------------------
    def dump(self, projection: Projection) -> Iterator[tuple[str, Row]]:
        """Every row of every table, in primary-key order (byte order, on any database),
        from one snapshot. Read with the driver's own cursor (server-side on PostgreSQL):
        SQLAlchemy's row objects were most of the cost of digesting a rebuild."""
        self.tables(projection)  # builds its statements on first use
        sql = self._sql[projection.name]
        postgres = self.engine.dialect.name == "postgresql"
        with self.engine.connect() as conn, conn.begin():
            driver = conn.connection.dbapi_connection
            assert driver is not None
            for name in sorted(sql):
                cursor = driver.cursor(name=f"ais_dump_{name}") if postgres else driver.cursor()
                try:
                    cursor.execute(sql[name].dump)
                    columns = sql[name].columns
                    while chunk := cursor.fetchmany(DUMP_CHUNK):
                        for values in chunk:
                            yield name, dict(zip(columns, values, strict=True))
                finally:
                    cursor.close()

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
