"""Maps AIS_DATABASE_URL onto the eventsourcing persistence modules' environment."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from adapters.settings import ConfigError


def eventsourcing_env(database_url: str | None, home: Path) -> dict[str, str]:
    """Unset → SQLite file in AIS_HOME (WAL); postgresql://... → PostgreSQL via psycopg 3."""
    common = {"AGGREGATE_CACHE_MAXSIZE": "1000"}
    if not database_url:
        home.mkdir(parents=True, exist_ok=True)
        return {
            **common,
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(home / "ais.sqlite"),
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
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
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
