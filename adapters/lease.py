"""One trading loop per account: a lease held for the life of the process.

PostgreSQL: a session-level `pg_try_advisory_lock` on a connection of its own (the lock
goes when the connection does, so a crashed process frees it). SQLite: an exclusive
`flock` on `$AIS_HOME/run-<account>.lock` (freed by the kernel when the process dies).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse, urlunparse


class LeaseHeld(Exception):
    """Another process already trades this account."""

    def __init__(self, account_id: str) -> None:
        super().__init__(f"account {account_id} is already traded by another process")
        self.account_id = account_id


def advisory_key(*parts: str) -> int:
    """A signed 64-bit PostgreSQL advisory-lock key naming what the lock guards."""
    digest = hashlib.sha256("\0".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lease_key(scope: str, account_id: str) -> int:
    """A signed 64-bit advisory-lock key for (store scope, account)."""
    return advisory_key("ais-run", scope, account_id)


class LeaseUnknown(Exception):
    """The lease's database is unreachable: whether we still hold it cannot be told."""


class Lease:
    """Held from `acquire_lease` until `release()` (or process exit)."""

    def __init__(self, account_id: str, release: Any, check: Any = None) -> None:
        self.account_id = account_id
        self._release = release
        self._check = check

    def check(self) -> None:
        """Raise LeaseHeld if another process took the lease, LeaseUnknown if that cannot
        be told now. A PostgreSQL lease goes with its connection: when a database outage
        dropped it, it is taken again here, unless someone else was quicker."""
        if self._check is not None:
            self._check()

    def release(self) -> None:
        if self._release is not None:
            self._release()
            self._release = None

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


def acquire_lease(account_id: str, database_url: str | None, home: Path) -> Lease:
    """Take the account's lease or raise LeaseHeld; never waits."""
    if database_url:
        return _postgres(account_id, database_url)
    return _file(account_id, home)


def _file(account_id: str, home: Path) -> Lease:
    home.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", account_id)
    fd = os.open(home / f"run-{safe}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LeaseHeld(account_id) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())

    def release() -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    return Lease(account_id, release)


def _postgres(account_id: str, database_url: str) -> Lease:
    import psycopg

    parsed = urlparse(database_url)
    schema = parse_qs(parsed.query).get("schema", ["public"])[0]
    scheme = "postgresql" if parsed.scheme.startswith("postgres") else parsed.scheme
    conninfo = urlunparse(parsed._replace(scheme=scheme, query=""))
    # Advisory locks live in the database they are taken in, so the key names only the
    # schema: one database reached under two host names still has one lease per account.
    key = lease_key(schema, account_id)
    held = [_lock(conninfo, key, account_id)]

    def check() -> None:
        try:
            held[0].execute("SELECT 1")
            return
        except psycopg.Error:
            held[0].close()
        try:
            held[0] = _lock(conninfo, key, account_id)
        except psycopg.Error as exc:
            raise LeaseUnknown(f"account {account_id}: lease unknown: {exc}") from None

    def release() -> None:
        try:
            held[0].execute("SELECT pg_advisory_unlock(%s)", (key,))
        except psycopg.Error:
            pass  # the connection is gone, and the lock with it
        finally:
            held[0].close()

    return Lease(account_id, release, check)


def _lock(conninfo: str, key: int, account_id: str) -> Any:
    """A connection holding the advisory lock `key`, or LeaseHeld."""
    import psycopg

    conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=5)
    try:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
    except Exception:
        conn.close()
        raise
    if not row or not row[0]:
        conn.close()
        raise LeaseHeld(account_id)
    return conn
