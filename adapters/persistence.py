"""Maps AIS_DATABASE_URL onto the eventsourcing persistence modules' environment."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from adapters.settings import ConfigError


def eventsourcing_env(database_url: str | None, home: Path) -> dict[str, str]:
    """Unset → SQLite file in AIS_HOME (WAL); postgresql://... → PostgreSQL via psycopg 3."""
    common = {"AGGREGATE_CACHE_MAXSIZE": "1000"}
    if not database_url:
        home.mkdir(parents=True, exist_ok=True)
        database = home / "ais.sqlite"
        _refuse_foreign_file(database)
        return {
            **common,
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(database),
            "SQLITE_LOCK_TIMEOUT": "30",
        }
    url = urlparse(database_url)
    if url.scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
        raise ConfigError(
            f"AIS_DATABASE_URL: unsupported scheme {url.scheme!r}; use postgresql://..."
        )
    dbname = url.path.lstrip("/")
    if not dbname or not url.hostname:
        raise ConfigError("AIS_DATABASE_URL: needs a host and a database name")
    schema = parse_qs(url.query).get("schema", [""])[0]
    env = {
        **common,
        "PERSISTENCE_MODULE": "adapters.pg_persistence:Factory",
        "POSTGRES_DBNAME": dbname,
        "POSTGRES_HOST": url.hostname,
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": unquote(url.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(url.password or ""),
        "POSTGRES_CONNECT_TIMEOUT": "5",
    }
    if schema:
        env["POSTGRES_SCHEMA"] = schema
    return env


def sole_writer(env: dict[str, str]) -> dict[str, str]:
    """For a throw-away store no other process writes while this one runs: a backtest's.

    The aggregate cache is then the truth (the library puts every saved aggregate in
    it), so loading the desk on every bar skips the query for newer events; on SQLite
    commits skip the fsync (adapters/sqlite_persistence.py). Never for a shared store: a
    trading loop there must see the kill switch `ais serve` engages.
    """
    relaxed = {**env, "AGGREGATE_CACHE_FASTFORWARD": "n"}
    if env.get("PERSISTENCE_MODULE") == "eventsourcing.sqlite":
        relaxed["PERSISTENCE_MODULE"] = "adapters.sqlite_persistence:Factory"
    return relaxed


def _refuse_foreign_file(path: Path) -> None:
    """A file that is not SQLite (corrupted, or something else at that path) is refused
    before the store opens it, so it is never written to and the error names it.

    Read through SQLite, not a plain file handle: closing any handle on the database
    file drops every POSIX lock this process's open connections hold on it, and another
    process closing its last connection would then delete the WAL and shared memory from
    under them ("disk I/O error"). SQLite's own file layer defers such a close.
    """
    if not path.exists():
        return
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            connection.execute("PRAGMA schema_version").fetchone()
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc):
            raise ConfigError(
                f"{path}: not an SQLite database (corrupted or foreign file)"
            ) from None
        raise ConfigError(f"{path}: cannot read the store: {exc}") from None
