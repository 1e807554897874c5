"""Reads of the `rm_` tables, each with the tracking position it reflects.

Every read runs in one transaction that first reads the projection's tracking position
and then its rows. On SQLite (WAL) a transaction is a snapshot; on PostgreSQL it is made
`REPEATABLE READ, READ ONLY`, so the rows are exactly those of that position (the
projector commits rows and tracking together). Sorting on PostgreSQL uses the "C"
collation, the byte order SQLite uses, so cursors mean the same on both.

The hot path talks to the pooled DB-API connection with fixed SQL text (values always
bound as parameters; identifiers come from the projections' own table specs). Through
SQLAlchemy Core the same reads cost about ten times more per request (statement
compilation cache lookups, result processing, the engine's BEGIN hook), which was most
of a `/v1/portfolio` request; see bench/http_api.py.

`call` runs a read: on SQLite in the event loop itself, on PostgreSQL in the thread
pool. A SQLite read is in-process and takes ~0.1 ms, less than the hand-off to a worker
thread and back (which was a third of a `/v1/portfolio` request under load), and in WAL
mode a reader never waits for the projector or a writer. A PostgreSQL read waits on the
network (several round trips), so it must not hold the loop.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

from sqlalchemy import Integer, Table, select
from starlette.concurrency import run_in_threadpool

from adapters.read_store import SqlReadStore
from interfaces.http.pagination import decode_cursor, encode_cursor
from interfaces.http.problems import StoreUnavailable
from projections.registry import all_projections
from projections.spec import Projection

Row = dict[str, Any]
# The decision that leaves the desk in each kill-switch state.
KILL_STATES = {
    "KILL_SWITCH_ENGAGED": "HALTED", "KILL_SWITCH_RESET": "ACTIVE", "REDUCING": "REDUCING"
}
Query = Callable[[str, dict[str, Any]], list[Row]]
T = TypeVar("T")


class ReadQueries:
    def __init__(self, store: SqlReadStore, projections: Sequence[Projection] | None = None):
        self.store = store
        self.projections = list(projections) if projections is not None else all_projections()
        self.names = {p.name for p in self.projections}
        self.tables: dict[str, Table] = {}
        for projection in self.projections:
            self.tables.update(store.tables(projection))
        self._pg = store.engine.dialect.name == "postgresql"
        dbapi = store.engine.dialect.dbapi
        self._dbapi_error: type[Exception] = getattr(dbapi, "Error", Exception)
        self._sql_cache: dict[str, str] = {}
        self._local = threading.local()
        self._kept: list[Any] = []

    # --- plumbing ------------------------------------------------------------------------------
    async def call(self, read: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a read where it is cheapest (see the module docstring)."""
        if self._pg:
            return await run_in_threadpool(read, *args, **kwargs)
        return read(*args, **kwargs)

    def name(self, table: str) -> str:
        """The quoted, schema-qualified name of a read-model table."""
        t = self.tables.get(table, self.store.tracking)
        quoted = f'"{t.name}"'
        return f'"{self.store.schema}".{quoted}' if self.store.schema else quoted

    def _sql(self, text: str) -> str:
        """`:name` placeholders in the driver's style (sqlite3 `:name`, psycopg `%(name)s`)."""
        if not self._pg:
            return text
        found = self._sql_cache.get(text)
        if found is None:
            found = re.sub(r":([a-z_][a-z0-9_]*)", r"%(\1)s", text)
            self._sql_cache[text] = found
        return found

    def _col(self, table: str, column: str, *, sort: bool = False) -> str:
        """A column; text sorted in byte order on PostgreSQL too (as on SQLite)."""
        quoted = f'"{column}"'
        if sort and self._pg and not isinstance(self.tables[table].c[column].type, Integer):
            return f'{quoted} COLLATE "C"'
        return quoted

    def _connection(self) -> tuple[Any, bool]:
        """(DB-API connection, whether to give it back to the pool afterwards).

        SQLite reads keep one connection per thread (in practice: the event loop's),
        detached from the pool: a pool check-out and check-in cost more than the read.
        """
        if self._pg:
            return self.store.engine.raw_connection(), True
        raw = getattr(self._local, "connection", None)
        if raw is None:
            raw = self.store.engine.raw_connection()
            raw.detach()  # ours for good; closed when the store's engine is disposed
            self._local.connection = raw
            self._kept.append(raw)
        return raw, False

    def close(self) -> None:
        """Close the per-thread SQLite read connections."""
        while self._kept:
            with suppress(Exception):
                self._kept.pop().close()

    @contextmanager
    def transaction(self, *, single: bool = False) -> Iterator[Query]:
        """A read-only snapshot on a DB-API connection (see `_connection`).

        `single`: the caller runs one statement, which is a snapshot by itself, so the
        explicit transaction (and its round trips) is skipped.
        """
        raw, pooled = self._connection()
        broken = False
        try:
            cursor = raw.cursor()
            try:
                if not single:
                    cursor.execute(
                        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
                        if self._pg
                        else "BEGIN"
                    )

                def query(sql: str, params: dict[str, Any]) -> list[Row]:
                    cursor.execute(self._sql(sql), params)
                    names = [d[0] for d in cursor.description or ()]
                    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

                yield query
            except self._dbapi_error as exc:
                broken = True
                raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
            finally:
                try:
                    raw.rollback()
                finally:
                    cursor.close()
        finally:
            if pooled:
                raw.close()
            elif broken:  # start over with a fresh connection next time
                self._local.connection = None
                with suppress(Exception):
                    raw.close()

    def _tracked(self, query: Query, projection: str) -> int:
        found = query(
            f"SELECT notification_id FROM {self.name('tracking')} WHERE projection = :p",
            {"p": projection},
        )
        return int(found[0]["notification_id"]) if found else 0

    def position(self, projection: str) -> int:
        with self.transaction(single=True) as query:
            return self._tracked(query, projection)

    def _page(
        self,
        query: Query,
        resource: str,
        table: str,
        keys: tuple[str, ...],
        where: dict[str, Any],
        cursor: str | None,
        limit: int,
    ) -> tuple[list[Row], str | None]:
        """Rows after the cursor's key, in key order; the cursor of the next page, if any."""
        t = self.tables[table]
        types = tuple(int if isinstance(t.c[k].type, Integer) else str for k in keys)
        after = decode_cursor(resource, cursor, types)
        clauses = [f"{self._col(table, column)} = :w_{column}" for column in where]
        params: dict[str, Any] = {f"w_{column}": value for column, value in where.items()}
        if after is not None:
            alternatives = []
            for i, column in enumerate(keys):
                equal = [f"{self._col(table, keys[j])} = :k{j}" for j in range(i)]
                alternatives.append(
                    "(" + " AND ".join([*equal, f"{self._col(table, column, sort=True)} > :k{i}"])
                    + ")"
                )
            clauses.append("(" + " OR ".join(alternatives) + ")")
            params.update({f"k{i}": value for i, value in enumerate(after)})
        sql = f"SELECT * FROM {self.name(table)}"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY " + ", ".join(self._col(table, k, sort=True) for k in keys)
        sql += " LIMIT :limit"
        params["limit"] = limit + 1
        rows = query(sql, params)
        if len(rows) <= limit:
            return rows, None
        rows = rows[:limit]
        return rows, encode_cursor(resource, [rows[-1][k] for k in keys])

    # --- resources -----------------------------------------------------------------------------
    def portfolio(self) -> Row:
        # One statement (the hot path): the tracking row joined with the summary row.
        with self.transaction(single=True) as query:
            found = query(
                f"SELECT t.notification_id AS ais_tracked, p.* FROM {self.name('tracking')} t "
                f"LEFT JOIN {self.name('portfolio')} p ON p.id = 1 WHERE t.projection = :p",
                {"p": "portfolio"},
            )
        row = found[0] if found else {}
        names = [c.name for c in self.tables["portfolio"].columns]
        return {
            **{n: row.get(n) for n in names if n not in ("id", "position")},
            "updated_at_position": row.get("position"),
            "position": int(row.get("ais_tracked") or 0),
        }

    def nav_history(self, cursor: str | None, limit: int) -> Row:
        with self.transaction() as query:
            position = self._tracked(query, "portfolio")
            items, next_cursor = self._page(
                query, "nav_history", "nav_history", ("position",), {}, cursor, limit
            )
        return {"items": items, "next_cursor": next_cursor, "position": position}

    def nav_sample(self, points: int) -> Row:
        """At most `points` marks spread evenly over the log positions of the history
        (first and last included): one index seek each, however long the history."""
        table = self.name("nav_history")
        with self.transaction() as query:
            position = self._tracked(query, "portfolio")
            bounds = query(f"SELECT MIN(position) AS lo, MAX(position) AS hi FROM {table}", {})
            lo, hi = bounds[0]["lo"], bounds[0]["hi"]
            items: list[Row] = []
            if lo is not None:
                step = max(1, -(-(hi - lo) // max(1, points - 1)))
                at = lo
                while at <= hi and len(items) < points - 1:
                    found = query(
                        f"SELECT * FROM {table} WHERE position >= :p ORDER BY position LIMIT 1",
                        {"p": at},
                    )
                    if not found:
                        break
                    items.append(found[0])
                    at = max(at + step, int(found[0]["position"]) + 1)
                if not items or items[-1]["position"] != hi:
                    items += query(f"SELECT * FROM {table} WHERE position = :p", {"p": hi})
        return {"items": items, "position": position}

    def exposure(self) -> Row:
        with self.transaction() as query:
            position = self._tracked(query, "exposure")
            found = query(f"SELECT * FROM {self.name('exposure_totals')} WHERE id = 1", {})
            instruments = query(
                f"SELECT * FROM {self.name('exposure')} "
                f"ORDER BY {self._col('exposure', 'instrument', sort=True)}",
                {},
            )
        row = found[0] if found else {}
        return {
            "position": position,
            "nav": row.get("nav"),
            "long": row.get("long") or "0",
            "short": row.get("short") or "0",
            "gross": row.get("gross") or "0",
            "net": row.get("net") or "0",
            "leverage": row.get("leverage"),
            "instruments": instruments,
        }

    def positions(self) -> Row:
        with self.transaction() as query:
            position = self._tracked(query, "positions")
            items = query(
                f"SELECT * FROM {self.name('positions')} "
                f"ORDER BY {self._col('positions', 'instrument', sort=True)}",
                {},
            )
        return {"position": position, "items": items}

    def orders(
        self,
        cursor: str | None,
        limit: int,
        *,
        status: str | None = None,
        instrument: str | None = None,
        session_id: str | None = None,
    ) -> Row:
        filters = {"status": status, "instrument": instrument, "session_id": session_id}
        where = {k: v for k, v in filters.items() if v is not None}
        with self.transaction() as query:
            position = self._tracked(query, "orders")
            items, next_cursor = self._page(
                query, "orders", "orders", ("placed_at", "order_id"), where, cursor, limit
            )
        return {
            "items": [_order(r) for r in items],
            "next_cursor": next_cursor,
            "position": position,
        }

    def order(self, order_id: str) -> Row | None:
        with self.transaction() as query:
            position = self._tracked(query, "orders")
            found = query(
                f"SELECT * FROM {self.name('orders')} WHERE order_id = :id", {"id": order_id}
            )
        return {**_order(found[0]), "position": position} if found else None

    def risk_decisions(
        self, cursor: str | None, limit: int, *, decision: str | None, guard: str | None
    ) -> Row:
        filters = {"decision": decision, "guard": guard}
        where = {k: v for k, v in filters.items() if v is not None}
        with self.transaction() as query:
            position = self._tracked(query, "risk_decisions")
            items, next_cursor = self._page(
                query, "risk_decisions", "risk_decisions", ("position",), where, cursor, limit
            )
        for item in items:
            item["limit"] = item.pop("limit_value")
        return {"items": items, "next_cursor": next_cursor, "position": position}

    def kill_switch(self) -> Row:
        """The desk's kill-switch state: the latest state change among the risk decisions
        (none yet: ACTIVE)."""
        with self.transaction() as query:
            position = self._tracked(query, "risk_decisions")
            found = query(
                f"SELECT position, at, decision, reason, actor "
                f"FROM {self.name('risk_decisions')} WHERE decision IN "
                f"('KILL_SWITCH_ENGAGED', 'KILL_SWITCH_RESET', 'REDUCING') "
                f"ORDER BY position DESC LIMIT 1",
                {},
            )
        last = found[0] if found else {}
        return {
            "kill_state": KILL_STATES.get(str(last.get("decision")), "ACTIVE"),
            "changed_at": last.get("at"),
            "changed_at_position": last.get("position"),
            "reason": last.get("reason"),
            "actor": last.get("actor"),
            "position": position,
        }

    def sessions(self, cursor: str | None, limit: int, *, status: str | None) -> Row:
        where = {"status": status} if status is not None else {}
        with self.transaction() as query:
            position = self._tracked(query, "sessions")
            items, next_cursor = self._page(
                query, "sessions", "sessions", ("started_at", "session_id"), where, cursor,
                limit,
            )
        return {"items": items, "next_cursor": next_cursor, "position": position}

    def reconciliation(
        self, cursor: str | None, limit: int, head: int, *, status: str | None = None
    ) -> Row:
        """Snapshot verdicts with their per-item differences, by venue and snapshot.

        An empty page reflecting the head of the log while no reconciliation read model
        is registered (an empty read model is current at every position).
        """
        if "reconciliation" not in self.tables:
            decode_cursor("reconciliation", cursor, (str, int))  # still refuse bad cursors
            return {"items": [], "next_cursor": None, "position": head}
        where = {"status": status} if status is not None else {}
        with self.transaction() as query:
            position = self._tracked(query, "reconciliation")
            results, next_cursor = self._page(
                query, "reconciliation", "reconciliation", ("venue", "snapshot"), where,
                cursor, limit,
            )
            items: list[Row] = []
            snapshots = sorted({r["snapshot"] for r in results})
            if snapshots and "reconciliation_items" in self.tables:
                marks = ", ".join(f":s{i}" for i in range(len(snapshots)))
                items = query(
                    f"SELECT * FROM {self.name('reconciliation_items')} "
                    f"WHERE snapshot IN ({marks}) ORDER BY "
                    + ", ".join(
                        self._col("reconciliation_items", c, sort=True)
                        for c in ("venue", "snapshot", "kind", "item")
                    ),
                    {f"s{i}": snapshot for i, snapshot in enumerate(snapshots)},
                )
        by_snapshot: dict[tuple[Any, Any], list[Row]] = {}
        for item in items:
            key = (item.pop("venue", None), item.pop("snapshot", None))
            by_snapshot.setdefault(key, []).append(item)
        for result in results:
            result["items"] = by_snapshot.get((result["venue"], result["snapshot"]), [])
        return {"items": results, "next_cursor": next_cursor, "position": position}

    def ping(self) -> None:
        with self.store.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def positions_by_projection(self) -> dict[str, int]:
        tracking = self.store.tracking
        with self.store.engine.connect() as conn:
            found = conn.execute(
                select(tracking.c.projection, tracking.c.notification_id)
            ).all()
        known = {str(name): int(position) for name, position in found}
        return {name: known.get(name, 0) for name in sorted(self.names)}


def _order(row: Row) -> Row:
    row["reduce_only"] = row.get("reduce_only") == "true"
    return row
