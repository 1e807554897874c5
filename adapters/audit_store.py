"""The audit seal in the database: the sealer, its checkpoints, `verify --db` and proofs.

Tables (same database and schema as the read models, prefix `rm_`):

- `rm_audit_seal`: one row, the sealer's resumable state: how many events are sealed
  (`tree_size`), the position of the last one, the chain head and the Merkle frontier
  (the roots of the perfect subtrees covering the sealed leaves, O(log n) of them). A
  batch of events costs O(batch + log n) to seal, whatever the log's length.
- `rm_audit_leaves`: one row per sealed event: its leaf index, position and record hash.
  Not trusted by itself (it is as writable as the events); it lets `verify --db` name the
  exact event that was changed, deleted or inserted after sealing, and `prove` build an
  inclusion proof without re-hashing the log.
- `rm_audit_checkpoints`: Ed25519-signed checkpoints (tree size, last position, chain
  head, Merkle root, created at), one every N sealed events and on demand. These are the
  trust anchors: a leaf table rewritten to match an edited log no longer matches them.

Each batch's leaves, checkpoints and the new state commit in one transaction, guarded by
the tree size the batch started from, so a crash loses the batch (it is sealed again) and
a second sealer racing on the same log loses its commit instead of sealing twice.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg import sql
from psycopg.rows import tuple_row
from sqlalchemy import BigInteger, Column, Engine, MetaData, Table, Text, inspect, select, update

from adapters.event_log import EventLog
from adapters.keys import AUDIT_PRIVATE, AUDIT_PUBLIC
from adapters.read_store import WRITE
from adapters.settings import Settings
from projections.audit_seal import (
    ZERO_LINK,
    AuditFormatError,
    Checkpoint,
    Frontier,
    chain_step,
    inclusion_proof,
    key_fingerprint,
    load_public_key_pem,
    public_key_pem,
    record_hash,
)

LOG = "ais"
DEFAULT_EVERY = 1000
READ_BATCH = 5000
Progress = Callable[[int, int], None]  # (position reached, head)


class AuditError(ValueError):
    """An audit operation cannot go on; the message is one line a person can act on."""


class SealConflict(Exception):
    """Another sealer advanced the seal first."""


class AuditSettings(Settings):
    """Settings plus the audit key files (AIS_AUDIT_KEY_FILE, AIS_AUDIT_PUBLIC_KEY_FILE)."""

    audit_key_file: Path | None = None
    audit_public_key_file: Path | None = None
    audit_checkpoint_every: int = DEFAULT_EVERY

    @property
    def signing_key_path(self) -> Path:
        return self.audit_key_file or self.home / "keys" / AUDIT_PRIVATE

    @property
    def public_key_path(self) -> Path:
        return self.audit_public_key_file or self.home / "keys" / AUDIT_PUBLIC


# --- keys --------------------------------------------------------------------------------------
def load_signing_key(path: Path) -> Ed25519PrivateKey:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AuditError(f"no audit signing key at {path}: run `ais keys init`") from None
    except OSError as exc:
        raise AuditError(f"cannot read the audit signing key {path}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise AuditError(f"{path}: not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AuditError(f"no audit public key at {path}") from None
    except OSError as exc:
        raise AuditError(f"cannot read the audit public key {path}: {exc.strerror}") from None
    try:
        return load_public_key_pem(data)
    except AuditFormatError as exc:
        raise AuditError(f"{path}: {exc}") from None


# --- the raw log -------------------------------------------------------------------------------
# One stored event: position, originator id (canonical UUID text), version, topic, state.
Record = tuple[int, str, int, str, bytes]
_COLUMNS = "originator_version, topic, state"
# SQLite keeps a UUID originator id as 32 hex digits; this gives its canonical form.
_SQLITE_UUID = (
    "substr(originator_id,1,8)||'-'||substr(originator_id,9,4)||'-'||"
    "substr(originator_id,13,4)||'-'||substr(originator_id,17,4)||'-'||substr(originator_id,21)"
)


class RawLog:
    """Stored events exactly as recorded (the bytes the seal covers), in position order.

    Rows are read with one plain SELECT on the eventsourcing recorder's own table and
    connection (the same rows `select_notifications` returns, without building a
    Notification and a UUID per row, which is most of the cost of reading the log).
    """

    def __init__(self, env: dict[str, str]) -> None:
        self.env = dict(env)
        self.app = EventLog(env)
        self.recorder = self.app.recorder
        self.select = self._selector()

    def head(self) -> int:
        return self.recorder.max_notification_id() or 0

    def _selector(self) -> Callable[[int | None, int | None, int], list[Record]]:
        recorder = self.recorder
        if isinstance(recorder, SQLiteApplicationRecorder):
            table = recorder.events_table_name
            uuid_ids = recorder.datastore.originator_id_type == "uuid"
            oid = _SQLITE_UUID if uuid_ids else "originator_id"
            base = f"SELECT rowid, {oid}, {_COLUMNS} FROM {table}"

            def select_sqlite(start: int | None, stop: int | None, limit: int) -> list[Record]:
                where, params = _where("rowid", start, stop)
                query = f"{base}{where} ORDER BY rowid LIMIT ?"
                with recorder.datastore.transaction(commit=False) as cursor:
                    raw = cursor.sqlite_cursor
                    raw.row_factory = None  # plain tuples
                    raw.execute(query, [*params, limit])
                    rows: list[Record] = raw.fetchall()
                    return rows

            return select_sqlite
        if isinstance(recorder, PostgresApplicationRecorder):
            datastore = recorder.datastore
            base_pg = sql.SQL(
                "SELECT notification_id, originator_id::text, " + _COLUMNS + " FROM {}.{}"
            ).format(sql.Identifier(datastore.schema), sql.Identifier(recorder.events_table_name))

            def select_postgres(start: int | None, stop: int | None, limit: int) -> list[Record]:
                where, params = _where("notification_id", start, stop, "%s")
                query = base_pg + sql.SQL(where + " ORDER BY notification_id LIMIT %s")
                with datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
                    cur.execute(query, [*params, limit])
                    return [(p, o, v, t, bytes(s)) for p, o, v, t, s in cur.fetchall()]

            return select_postgres

        def select_any(start: int | None, stop: int | None, limit: int) -> list[Record]:
            found = recorder.select_notifications(start=start, limit=limit, stop=stop)
            return [
                (n.id, str(n.originator_id), n.originator_version, n.topic, n.state) for n in found
            ]

        return select_any

    def batches(
        self, after: int | None, upto: int | None = None, size: int = READ_BATCH
    ) -> Iterator[list[Record]]:
        """Records after `after` (None: from the very first row, whatever its position)
        up to `upto` inclusive, `size` at a time."""
        start = None if after is None else after + 1
        while True:
            batch = self.select(start, upto, size)
            if not batch:
                return
            yield batch
            start = batch[-1][0] + 1

    def at(self, position: int) -> Record | None:
        found = self.select(position, position, 1)
        return found[0] if found else None

    def close(self) -> None:
        self.app.close()


def _where(
    column: str, start: int | None, stop: int | None, mark: str = "?"
) -> tuple[str, list[int]]:
    clauses: list[str] = []
    params: list[int] = []
    if start is not None:
        clauses.append(f"{column} >= {mark}")
        params.append(start)
    if stop is not None:
        clauses.append(f"{column} <= {mark}")
        params.append(stop)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def notification_hash(r: Record) -> bytes:
    return record_hash(*r)


# --- the tables ----------------------------------------------------------------------------------
def _checkpoint_row(checkpoint: Checkpoint, fingerprint: str) -> dict[str, Any]:
    row = checkpoint.to_dict()
    del row["format"]
    return {**row, "key_fingerprint": fingerprint}


@dataclass
class SealState:
    tree_size: int
    last_position: int
    chain_head: bytes
    frontier: Frontier


class AuditStore:
    def __init__(self, engine: Engine, schema: str | None = None, prefix: str = "rm_") -> None:
        self.engine = engine
        self.metadata = MetaData(schema=schema)
        self.seal = Table(
            f"{prefix}audit_seal",
            self.metadata,
            Column("log", Text, primary_key=True),
            Column("tree_size", BigInteger, nullable=False),
            Column("last_position", BigInteger, nullable=False),
            Column("chain_head", Text, nullable=False),
            Column("frontier", Text, nullable=False),
        )
        self.leaves = Table(
            f"{prefix}audit_leaves",
            self.metadata,
            Column("leaf_index", BigInteger, primary_key=True, autoincrement=False),
            Column("position", BigInteger, nullable=False, unique=True),
            Column("record_sha256", Text, nullable=False),
        )
        self.checkpoints = Table(
            f"{prefix}audit_checkpoints",
            self.metadata,
            Column("tree_size", BigInteger, primary_key=True, autoincrement=False),
            Column("last_position", BigInteger, nullable=False),
            Column("chain_head", Text, nullable=False),
            Column("merkle_root", Text, nullable=False),
            Column("created_at", Text, nullable=False),
            Column("signature", Text, nullable=False),
            Column("key_fingerprint", Text, nullable=False),
        )

    def exists(self) -> bool:
        with self.engine.connect() as conn:
            return inspect(conn).has_table(self.seal.name, schema=self.metadata.schema)

    def create(self) -> None:
        with self.engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
            self.metadata.create_all(conn, checkfirst=True)
            found = conn.execute(select(self.seal.c.log).where(self.seal.c.log == LOG)).first()
            if found is None:
                conn.execute(
                    self.seal.insert().values(
                        log=LOG,
                        tree_size=0,
                        last_position=0,
                        chain_head=ZERO_LINK.hex(),
                        frontier="[]",
                    )
                )

    def state(self) -> SealState:
        with self.engine.connect() as conn:
            row = conn.execute(select(self.seal).where(self.seal.c.log == LOG)).mappings().first()
        if row is None:
            return SealState(0, 0, ZERO_LINK, Frontier())
        try:
            return SealState(
                tree_size=row["tree_size"],
                last_position=row["last_position"],
                chain_head=bytes.fromhex(row["chain_head"]),
                frontier=Frontier.from_json(row["tree_size"], row["frontier"]),
            )
        except (ValueError, AuditFormatError) as exc:
            raise AuditError(f"the seal state row is damaged: {exc}") from None

    def commit(
        self,
        expected_size: int,
        state: SealState,
        leaves: list[dict[str, Any]],
        checkpoints: list[Checkpoint],
        fingerprint: str,
    ) -> None:
        """The batch's leaves, checkpoints and new state in one guarded transaction."""
        with self.engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
            moved = conn.execute(
                update(self.seal)
                .where(self.seal.c.log == LOG, self.seal.c.tree_size == expected_size)
                .values(
                    tree_size=state.tree_size,
                    last_position=state.last_position,
                    chain_head=state.chain_head.hex(),
                    frontier=state.frontier.to_json(),
                )
            ).rowcount
            if moved != 1:
                raise SealConflict(f"the seal moved past {expected_size} meanwhile")
            if leaves:
                conn.execute(self.leaves.insert(), leaves)
            if checkpoints:
                conn.execute(
                    self.checkpoints.insert(),
                    [_checkpoint_row(c, fingerprint) for c in checkpoints],
                )

    def add_checkpoint(self, checkpoint: Checkpoint, fingerprint: str) -> bool:
        """Insert an on-demand checkpoint; False when one of that size exists already."""
        with self.engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
            found = conn.execute(
                select(self.checkpoints.c.tree_size).where(
                    self.checkpoints.c.tree_size == checkpoint.tree_size
                )
            ).first()
            if found is not None:
                return False
            row = _checkpoint_row(checkpoint, fingerprint)
            conn.execute(self.checkpoints.insert().values(**row))
        return True

    def list_checkpoints(self) -> list[Checkpoint]:
        if not self.exists():
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(self.checkpoints).order_by(self.checkpoints.c.tree_size)
            ).mappings()
            return [
                Checkpoint(
                    tree_size=r["tree_size"],
                    last_position=r["last_position"],
                    chain_head=r["chain_head"],
                    merkle_root=r["merkle_root"],
                    created_at=r["created_at"],
                    signature=r["signature"],
                )
                for r in rows
            ]

    def iter_leaves(
        self, start: int = 0, stop: int | None = None
    ) -> Iterator[tuple[int, int, str]]:
        """(leaf_index, position, record_sha256) in index order, from `start` below `stop`."""
        index = start
        while stop is None or index < stop:
            query = select(self.leaves).where(self.leaves.c.leaf_index >= index)
            if stop is not None:
                query = query.where(self.leaves.c.leaf_index < stop)
            with self.engine.connect() as conn:
                rows = conn.execute(
                    query.order_by(self.leaves.c.leaf_index).limit(READ_BATCH)
                ).all()
            if not rows:
                return
            for leaf_index, position, digest in rows:
                yield int(leaf_index), int(position), str(digest)
            index = int(rows[-1][0]) + 1

    def leaf_at(self, position: int) -> tuple[int, str] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(self.leaves.c.leaf_index, self.leaves.c.record_sha256).where(
                    self.leaves.c.position == position
                )
            ).first()
        return None if row is None else (int(row[0]), str(row[1]))

    def close(self) -> None:
        self.engine.dispose()


# --- the sealer ----------------------------------------------------------------------------------
class Sealer:
    """Follows the log and seals it: chain, Merkle frontier, leaves, signed checkpoints."""

    def __init__(
        self,
        log: RawLog,
        store: AuditStore,
        key: Ed25519PrivateKey,
        clock: Callable[[], datetime],
        *,
        every: int = DEFAULT_EVERY,
        batch_size: int = READ_BATCH,
    ) -> None:
        if every < 1:
            raise AuditError("the checkpoint interval must be at least 1 event")
        self.log = log
        self.store = store
        self.key = key
        self.clock = clock
        self.every = every
        self.batch_size = batch_size
        self.fingerprint = key_fingerprint(key.public_key())
        self.conflicts = 0
        store.create()

    def _checkpoint(self, state: SealState) -> Checkpoint:
        return Checkpoint(
            tree_size=state.tree_size,
            last_position=state.last_position,
            chain_head=state.chain_head.hex(),
            merkle_root=state.frontier.root().hex(),
            created_at=self.clock().isoformat(),
        ).signed(self.key)

    def run_once(self, progress: Progress | None = None, stop_at: int | None = None) -> int:
        """Seal every event up to the head (or `stop_at`); returns how many were sealed."""
        sealed = 0
        head = self.log.head() if stop_at is None else stop_at
        state = self.store.state()
        while True:
            after = state.last_position if state.tree_size else None
            batch = next(self.log.batches(after, stop_at, self.batch_size), None)
            if not batch:
                return sealed
            new = SealState(
                state.tree_size, state.last_position, state.chain_head, state.frontier.copy()
            )
            leaves: list[dict[str, Any]] = []
            checkpoints: list[Checkpoint] = []
            for n in batch:
                digest = notification_hash(n)
                new.chain_head = chain_step(new.chain_head, digest)
                new.frontier.append(digest)
                leaves.append(
                    {"leaf_index": new.tree_size, "position": n[0], "record_sha256": digest.hex()}
                )
                new.tree_size += 1
                new.last_position = n[0]
                if new.tree_size % self.every == 0:
                    checkpoints.append(self._checkpoint(new))
            try:
                self.store.commit(state.tree_size, new, leaves, checkpoints, self.fingerprint)
            except SealConflict:
                self.conflicts += 1
                state = self.store.state()
                continue
            sealed += len(batch)
            state = new
            if progress is not None:
                progress(state.last_position, max(head, state.last_position))

    def checkpoint_now(self) -> Checkpoint | None:
        """Seal up to the head, then sign a checkpoint at the sealed size (None: nothing new)."""
        self.run_once()
        state = self.store.state()
        if state.tree_size == 0:
            return None
        latest = self.store.list_checkpoints()
        if latest and latest[-1].tree_size >= state.tree_size:
            return None
        checkpoint = self._checkpoint(state)
        return checkpoint if self.store.add_checkpoint(checkpoint, self.fingerprint) else None

    def follow(
        self, stop: threading.Event, interval: float = 1.0, idle_checkpoint: float = 60.0
    ) -> None:
        """Keep sealing; once the log has been quiet for `idle_checkpoint` seconds, sign a
        checkpoint at its end too, so the tail does not stay unsigned until N more events."""
        quiet_since = time.monotonic()
        while not stop.is_set():
            if self.run_once():
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= idle_checkpoint:
                self.checkpoint_now()
                quiet_since = time.monotonic()
            stop.wait(interval)


# --- verify --db ---------------------------------------------------------------------------------
@dataclass
class DbReport:
    events: int = 0  # events in the log
    sealed: int = 0  # sealed events, each matched against its leaf
    unsealed: int = 0  # events after the last sealed one
    checkpoints: int = 0  # signed checkpoints matched
    last_checkpoint: Checkpoint | None = None
    problem: str | None = None  # "position N: ..." or "seal: ..."
    notes: list[str] = field(default_factory=list)


def verify_database(
    log: RawLog,
    store: AuditStore,
    key: Ed25519PublicKey,
    progress: Progress | None = None,
) -> DbReport:
    """Check the live log against its seal: every sealed event is still there, unchanged,
    in place, nothing was inserted among them, and the signed checkpoints still hold."""
    report = DbReport()
    if not store.exists():
        report.problem = "seal: the log was never sealed (run `ais audit seal`)"
        return report
    checkpoints = store.list_checkpoints()
    for c in checkpoints:
        if not c.verifies(key):
            report.problem = (
                f"seal: the checkpoint at tree size {c.tree_size} (position {c.last_position}) "
                "is not signed by this public key"
            )
            return report
    state = store.state()
    pending = iter(checkpoints)
    next_cp = next(pending, None)
    leaves = _Peekable(store.iter_leaves())
    chain, frontier = ZERO_LINK, Frontier()
    previous_cp_position = 0
    head = log.head()

    def fail(message: str) -> DbReport:
        report.problem = message
        return report

    index = 0
    for batch in log.batches(None):
        for j, n in enumerate(batch):
            report.events += 1
            digest = notification_hash(n)
            if index >= state.tree_size:
                report.unsealed += 1
                continue
            leaf = leaves.next()
            if leaf is None or leaf[0] != index:
                return fail(f"seal: leaf {index} is missing from the seal table")
            _, position, sealed_hex = leaf
            if n[0] < position:
                return fail(
                    f"position {n[0]}: event not in the seal (inserted after sealing, "
                    f"before sealed position {position})"
                )
            if n[0] > position:
                return fail(f"position {position}: sealed event is missing (deleted)")
            if digest.hex() != sealed_hex:
                following = batch[j + 1] if j + 1 < len(batch) else None
                return fail(_diagnose(n, sealed_hex, following, leaves.peek()))
            chain = chain_step(chain, digest)
            frontier.append(digest)
            index += 1
            report.sealed += 1
            if next_cp is not None and index == next_cp.tree_size:
                if (
                    n[0] != next_cp.last_position
                    or chain.hex() != next_cp.chain_head
                    or frontier.root().hex() != next_cp.merkle_root
                ):
                    return fail(
                        f"position {n[0]}: the log does not match the signed checkpoint at "
                        f"tree size {next_cp.tree_size}: an event in positions "
                        f"{previous_cp_position + 1}..{n[0]} was changed after sealing "
                        "(and the seal table rewritten to hide it)"
                    )
                report.checkpoints += 1
                report.last_checkpoint = next_cp
                previous_cp_position = n[0]
                next_cp = next(pending, None)
        if progress is not None:
            progress(batch[-1][0], max(head, batch[-1][0]))
    leaf = leaves.peek()
    if index < state.tree_size:
        missing = leaf[1] if leaf is not None else state.last_position
        return fail(f"position {missing}: sealed event is missing (the log ends before it)")
    if next_cp is not None:
        return fail(
            f"seal: the checkpoint at tree size {next_cp.tree_size} is beyond the "
            f"{state.tree_size} sealed events"
        )
    if index and (chain != state.chain_head or frontier.root() != state.frontier.root()):
        return fail("seal: the seal state row does not match the sealed leaves")
    if report.sealed > (report.last_checkpoint.tree_size if report.last_checkpoint else 0):
        covered = report.last_checkpoint.tree_size if report.last_checkpoint else 0
        report.notes.append(
            f"{report.sealed - covered} sealed events after the last checkpoint are checked "
            "against the seal table only (unsigned until the next checkpoint)"
        )
    return report


class _Peekable:
    def __init__(self, items: Iterator[tuple[int, int, str]]) -> None:
        self.items = items
        self.ahead: tuple[int, int, str] | None = None

    def next(self) -> tuple[int, int, str] | None:
        if self.ahead is not None:
            found, self.ahead = self.ahead, None
            return found
        return next(self.items, None)

    def peek(self) -> tuple[int, int, str] | None:
        if self.ahead is None:
            self.ahead = next(self.items, None)
        return self.ahead


def _rehash(n: Record, position: int) -> str:
    """The record hash this event's content would have at another position."""
    return record_hash(position, *n[1:]).hex()


def _diagnose(
    n: Record,
    sealed_hex: str,
    following: Record | None,
    next_leaf: tuple[int, int, str] | None,
) -> str:
    """Name what happened at a position whose event is not the sealed one."""
    if next_leaf is not None and _rehash(n, next_leaf[1]) == next_leaf[2]:
        return (
            f"position {n[0]}: holds the event sealed at position {next_leaf[1]} (events "
            "removed or reordered after sealing)"
        )
    if following is not None and _rehash(following, n[0]) == sealed_hex:
        return (
            f"position {n[0]}: an event was inserted here after sealing (the event sealed "
            f"at position {n[0]} now sits at position {following[0]})"
        )
    return (
        f"position {n[0]}: the stored event differs from the sealed record (changed after sealing)"
    )


# --- inclusion proofs ----------------------------------------------------------------------------
PROOF_FORMAT = "ais-audit-proof/1"


def prove(
    log: RawLog, store: AuditStore, position: int, public_key: Ed25519PublicKey | None
) -> dict[str, Any]:
    """An inclusion proof of the event at `position` against the latest checkpoint."""
    checkpoints = store.list_checkpoints()
    if not checkpoints:
        raise AuditError("no signed checkpoint yet: run `ais audit seal --checkpoint`")
    checkpoint = checkpoints[-1]
    found = store.leaf_at(position)
    if found is None:
        raise AuditError(f"position {position}: not sealed (no such event, or not sealed yet)")
    index, sealed_hex = found
    if index >= checkpoint.tree_size:
        raise AuditError(
            f"position {position}: sealed after the latest checkpoint (tree size "
            f"{checkpoint.tree_size}); run `ais audit seal --checkpoint`"
        )
    event = log.at(position)
    if event is None:
        raise AuditError(f"position {position}: sealed event is missing (deleted)")
    digest = notification_hash(event)
    if digest.hex() != sealed_hex:
        raise AuditError(
            f"position {position}: the stored event differs from the sealed record "
            "(changed after sealing)"
        )
    leaves = (bytes.fromhex(h) for _, _, h in store.iter_leaves(0, checkpoint.tree_size))
    try:
        path = inclusion_proof(leaves, index, checkpoint.tree_size)
    except AuditFormatError as exc:
        raise AuditError(f"seal: {exc}") from None
    proof: dict[str, Any] = {
        "format": PROOF_FORMAT,
        "position": position,
        "originator_id": event[1],
        "originator_version": event[2],
        "topic": event[3],
        "record": base64.b64encode(event[4]).decode("ascii"),
        "record_sha256": digest.hex(),
        "leaf_index": index,
        "tree_size": checkpoint.tree_size,
        "proof": [p.hex() for p in path],
        "checkpoint": checkpoint.to_dict(),
    }
    if public_key is not None:
        proof["public_key"] = public_key_pem(public_key)
    return proof
