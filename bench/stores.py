"""The PostgreSQL server the benchmarks use, and a throw-away schema on it per run."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

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
