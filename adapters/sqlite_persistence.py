"""eventsourcing's SQLite persistence for a store that can be made again: a backtest's.

A backtest's store is rebuilt from its data and seed at will, so it need not wait for
an fsync at every commit. In WAL mode `synchronous=NORMAL` still keeps the file
consistent through any crash; only a power cut may lose the last transactions. The
trading store keeps the library's default (FULL): an acknowledged fill is on disk.
"""

from __future__ import annotations

from eventsourcing import sqlite
from eventsourcing.utils import Environment, EnvType


class _RelaxedPool(sqlite.SQLiteConnectionPool):
    def _create_connection(self) -> sqlite.SQLiteConnection:
        connection = super()._create_connection()
        connection._sqlite_conn.execute("PRAGMA synchronous=NORMAL")
        return connection


class Factory(sqlite.SQLiteFactory):
    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        stock = self.datastore.pool  # built by the library, no connection opened yet
        self.datastore.pool = _RelaxedPool(
            db_name=stock.db_name,
            lock_timeout=stock.lock_timeout,
            pool_size=stock.pool_size,
            max_overflow=stock.max_overflow,
            pool_timeout=stock.pool_timeout,
            max_age=stock.max_age,
            pre_ping=stock.pre_ping,
        )
        stock.close()
