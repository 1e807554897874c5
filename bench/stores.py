"""The stores the benchmarks run on: a temporary SQLite file, and a throw-away schema on the
PostgreSQL server per run."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from rich.console import Console

from adapters.persistence import eventsourcing_env

PG_DSN = os.environ.get(
    "AIS_BENCH_PG_DSN",
    os.environ.get("AIS_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test"),
)


def postgres_reachable() -> str | None:
    """None when reachable, else one line saying why not."""
    try:
        with psycopg.connect(PG_DSN, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"PostgreSQL not reachable at {PG_DSN}: {first}"


@contextmanager
def postgres_schema(prefix: str = "bench") -> Iterator[str]:
    """A fresh schema for one run; yields its database URL and drops it afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_DSN}?schema={schema}"
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextmanager
def sqlite_env() -> Iterator[dict[str, str]]:
    with tempfile.TemporaryDirectory(prefix="ais-bench-") as tmp:
        yield eventsourcing_env(None, Path(tmp) / "home")


@contextmanager
def postgres_env() -> Iterator[dict[str, str]]:
    with postgres_schema() as url:
        yield eventsourcing_env(url, Path(tempfile.gettempdir()))


def event_stores(console: Console) -> Iterator[tuple[str, dict[str, str]]]:
    """Each store a benchmark runs on, open while the caller's loop body runs: SQLite,
    then PostgreSQL, or a line saying why PostgreSQL is skipped."""
    with sqlite_env() as env:
        yield "sqlite", env
    unreachable = postgres_reachable()
    if unreachable is not None:
        console.print(f"[yellow]skipped PostgreSQL figures: {unreachable}[/]")
        return
    with postgres_env() as env:
        yield "postgres", env
