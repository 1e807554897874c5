"""Audit seal, export and verification: every tamper is caught and named, on both stores.

The history is made by the real TradingApp (approved orders, fills, a cancel, a session
halt and resume); tampering is done the way an intruder with database access would: raw
SQL on the event table (`stored_events` on SQLite, `ais_events` in the test's schema on
PostgreSQL), or edits of the exported files.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse
from uuid import UUID

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from adapters.audit_export import MANIFEST, export_log
from adapters.audit_store import (
    AuditError,
    AuditStore,
    DbReport,
    RawLog,
    Sealer,
    prove,
    verify_database,
)
from adapters.audit_verify import ExportReport, Failure, check_proof, verify_export
from adapters.clock import SimulatedClock
from adapters.keys import AUDIT_PUBLIC, init_keys
from adapters.persistence import eventsourcing_env
from adapters.read_store import engines
from application.trading import TradingApp
from domain.approval import KeyRing
from domain.commands import (
    AcknowledgeOrder,
    CancelOrder,
    HaltSession,
    PlaceOrder,
    ResumeSession,
    SubmitOrder,
)
from domain.values import OrderType, Side
from projections.audit_seal import (
    EMPTY_ROOT,
    Frontier,
    inclusion_proof,
    merkle_root,
    merkle_root_of,
    proof_ranges,
    public_key_pem,
    render_state,
    sign_payload,
    verify_inclusion,
)
from tests.conftest import KEYS, PG_DSN, SECRET, AppFactory, start_session

ROOT = Path(__file__).resolve().parents[1]
EVERY = 10  # checkpoint interval in these tests


# --- a real history -------------------------------------------------------------------------------
def trade(app: TradingApp, clock: SimulatedClock) -> None:
    """Orders through their life cycle (fills open and grow a position), a cancel, a
    session halt and resume: every target event kind that carries an approval."""
    session = start_session(app)
    for i in range(3):
        clock.advance(15)
        order_id = app.ids()
        app.execute(
            PlaceOrder(
                order_id=order_id,
                session_id=session,
                instrument="BTC-USDT",
                side=Side.BUY,
                order_type=OrderType.LIMIT,
                quantity=Decimal("0.01"),
                limit_price=Decimal(50000 + i),
            )
        )
        app.execute(SubmitOrder(order_id=order_id, client_order_id=f"c{i}"))
        app.execute(AcknowledgeOrder(order_id=order_id, exchange_order_id=f"x{i}"))
        app.record_fill(
            order_id,
            trade_id=f"t{i}",
            quantity=Decimal("0.01"),
            price=Decimal(50000 + i),
            fee=Decimal("0.5"),
            filled_at=clock(),
        )
    clock.advance(15)
    doomed = app.ids()
    app.execute(
        PlaceOrder(
            order_id=doomed,
            session_id=session,
            instrument="ETH-USDT",
            side=Side.BUY,
            order_type=OrderType.LIMIT,
            quantity=Decimal("0.1"),
            limit_price=Decimal("2990"),
        )
    )
    app.execute(CancelOrder(order_id=doomed, reason="changed my mind"))
    app.execute(HaltSession(session_id=session, reason="lunch"))
    app.execute(ResumeSession(session_id=session, reason="back"))
    app.observe_mark("BTC-USDT", Decimal("50100"))


@dataclass
class Audit:
    home: Path
    url: str | None
    app: TradingApp
    log: RawLog
    store: AuditStore
    key: Ed25519PrivateKey
    clock: SimulatedClock

    @property
    def public_key(self) -> Path:
        return self.home / "keys" / AUDIT_PUBLIC

    def sealer(self, every: int = EVERY) -> Sealer:
        return Sealer(self.log, self.store, self.key, self.clock, every=every)

    def seal(self) -> None:
        self.sealer().checkpoint_now()

    def export(self, out: Path, **options: Any) -> dict[str, Any]:
        return export_log(self.log, self.store, out, key=self.key, clock=self.clock, **options)

    def verify(self, out: Path, **options: Any) -> ExportReport:
        return verify_export(out, public_key=self.public_key, **options)

    def verify_db(self) -> DbReport:
        return verify_database(self.log, self.store, self.key.public_key())

    def positions(self) -> list[tuple[int, str]]:
        """(position, 'Aggregate.Event') of every stored event."""
        return [
            (r[0], r[3].split(":", 1)[1]) for b in self.log.batches(None) for r in b
        ]

    def position_of(self, kind: str, nth: int = 0) -> int:
        return [p for p, k in self.positions() if k == kind][nth]

    # raw SQL on the event table, as an intruder would ------------------------------------
    def sql(self, statement: str, *params: Any) -> list[tuple[Any, ...]]:
        """`{t}` is the event table, `{p}` its position column; `?` placeholders."""
        if self.url is None:
            with sqlite3.connect(self.home / "ais.sqlite") as conn:
                text = statement.format(t="stored_events", p="rowid")
                return list(conn.execute(text, params).fetchall())
        schema = parse_qs(urlparse(self.url).query)["schema"][0]
        text = statement.format(t=f'"{schema}".ais_events', p="notification_id")
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            cursor = conn.execute(text.replace("?", "%s"), params)
            return list(cursor.fetchall()) if cursor.description else []

    def state_at(self, position: int) -> bytes:
        return bytes(self.sql("SELECT state FROM {t} WHERE {p} = ?", position)[0][0])

    def set_state(self, position: int, state: bytes) -> None:
        self.sql("UPDATE {t} SET state = ? WHERE {p} = ?", state, position)

    def delete(self, position: int) -> None:
        self.sql("DELETE FROM {t} WHERE {p} = ?", position)

    def move(self, old: int, new: int) -> None:
        self.sql("UPDATE {t} SET {p} = ? WHERE {p} = ?", new, old)

    def insert_at(self, position: int, copy_of: int) -> None:
        """Shift every event from `position` up by one and put a forged event there."""
        head = self.log.head()
        for p in range(head, position - 1, -1):
            self.move(p, p + 1)
        row = self.sql(
            "SELECT originator_id, originator_version, topic, state FROM {t} WHERE {p} = ?",
            copy_of if copy_of < position else copy_of + 1,
        )[0]
        forged = UUID(int=0xF00D)
        oid: Any = forged.hex if self.url is None else forged
        self.sql(
            "INSERT INTO {t} ({p}, originator_id, originator_version, topic, state) "
            "VALUES (?, ?, ?, ?, ?)",
            position, oid, row[1], row[2], row[3],
        )

    def swap(self, a: int, b: int) -> None:
        self.move(a, -7)
        self.move(b, a)
        self.move(-7, b)


@pytest.fixture
def audit(
    make_app: AppFactory, store_url: str | None, tmp_path: Path, clock: SimulatedClock
) -> Iterator[Audit]:
    app = make_app()
    trade(app, clock)
    home = tmp_path / "home"
    init_keys(home / "keys")
    from adapters.audit_store import load_signing_key

    key = load_signing_key(home / "keys" / "audit-ed25519.pem")
    engine, schema = engines(store_url, home)
    log = RawLog(eventsourcing_env(store_url, home))
    store = AuditStore(engine, schema)
    try:
        yield Audit(home, store_url, app, log, store, key, clock)
    finally:
        log.close()
        store.close()


def failure(excinfo: pytest.ExceptionInfo[Failure]) -> str:
    return str(excinfo.value)


# --- a clean log ----------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["ndjson", "csv", "parquet"])
def test_clean_log_seals_exports_and_verifies(audit: Audit, tmp_path: Path, fmt: str) -> None:
    audit.seal()
    head = audit.log.head()
    report_db = audit.verify_db()
    assert report_db.problem is None
    assert report_db.sealed == head and report_db.checkpoints == head // EVERY + 1
    manifest = audit.export(tmp_path / "out", fmt=fmt)
    assert sorted(os.listdir(tmp_path / "out")) == sorted([MANIFEST, f"events.{fmt}"])
    assert manifest["count"] == head and manifest["last_position"] == head
    report = audit.verify(tmp_path / "out", keys=KEYS)
    assert report.count == head
    # The export's Merkle root is the tree the database sealed and signed.
    assert report.merkle_root == audit.store.list_checkpoints()[-1].merkle_root
    assert report.merkle_root == merkle_root(
        bytes.fromhex(h) for _, _, h in audit.store.iter_leaves()
    ).hex()
    assert report.checkpoints == len(manifest["checkpoints"]) == head // EVERY + 1
    assert report.general_path_rows == 0
    approvals = report.approvals
    assert approvals is not None and approvals.digest_unchecked == 0
    # every target event of the history: 3 x (place, submit, ack, fill, apply) + place,
    # cancel + start, halt, resume
    assert approvals.tokens_verified == 3 * 5 + 2 + 3
    assert approvals.desk_tokens_verified == approvals.tokens_verified
    assert approvals.positions_opened == 1


def test_export_lines_are_readable_json(audit: Audit, tmp_path: Path) -> None:
    audit.export(tmp_path / "out")
    lines = (tmp_path / "out" / "events.ndjson").read_text().splitlines()
    placed = next(json.loads(x) for x in lines if "Order.Placed" in x)
    assert list(placed) == [
        "position", "originator_id", "originator_version", "topic", "timestamp", "state",
        "record_sha256", "chain", "record",
    ]
    assert placed["state"]["quantity"] == "0.01"  # a Decimal, as its exact string
    assert placed["state"]["session_id"].count("-") == 4  # a UUID, hyphenated
    assert placed["timestamp"] == placed["state"]["timestamp"]
    record = base64.b64decode(placed["record"])
    assert b'"_type_":"decimal_str"' in record  # the exact stored bytes
    assert json.loads(render_state(record)) == placed["state"]


def test_partial_export_anchors_its_chain_on_the_log(audit: Audit, tmp_path: Path) -> None:
    audit.seal()
    full = audit.export(tmp_path / "full")
    part = audit.export(tmp_path / "part", first=15, last=42)
    assert (part["first_position"], part["last_position"], part["count"]) == (15, 42, 28)
    lines = [json.loads(x) for x in (tmp_path / "full" / "events.ndjson").read_text().splitlines()]
    chain = {line["position"]: line["chain"] for line in lines}
    assert part["chain_prev"] == chain[14] and part["chain_head"] == chain[42]
    assert part["first_leaf_index"] == 14
    assert [c["tree_size"] for c in part["checkpoints"]] == [20, 30, 40]
    report = audit.verify(tmp_path / "part", keys=KEYS)
    assert report.count == 28 and report.checkpoints == 3
    assert full["merkle_root"] != part["merkle_root"]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_worker_processes_give_the_same_export_and_verdicts(audit: Audit, tmp_path: Path) -> None:
    audit.seal()
    one = audit.export(tmp_path / "one", workers=0)
    many = audit.export(tmp_path / "many", workers=2, task_positions=8)
    for name in ("count", "chain_head", "merkle_root", "checkpoints"):
        assert one[name] == many[name]
    data = (tmp_path / "one" / "events.ndjson").read_bytes()
    assert data == (tmp_path / "many" / "events.ndjson").read_bytes()
    report = audit.verify(tmp_path / "many", workers=2, batch_lines=8)
    assert report.workers == 2 and report.count == one["count"]
    assert report.merkle_root == one["merkle_root"] and report.checkpoints == 5
    # the first failure is still the file's first: one in batch 2, one in batch 4
    lines = data.splitlines(keepends=True)
    lines[40] = lines[40].replace(b'"timestamp":"2024', b'"timestamp":"2020', 1)
    lines[19] = lines[19].replace(b'"timestamp":"2024', b'"timestamp":"2021', 1)
    lines.pop(26)  # and a removed row at a batch boundary
    (tmp_path / "many" / "events.ndjson").write_bytes(b"".join(lines))
    with pytest.raises(Failure) as caught:
        audit.verify(tmp_path / "many", workers=2, batch_lines=8)
    assert failure(caught) == "position 20: timestamp does not match the record"
    lines[19] = data.splitlines(keepends=True)[19]
    (tmp_path / "many" / "events.ndjson").write_bytes(b"".join(lines))
    with pytest.raises(Failure) as caught:
        audit.verify(tmp_path / "many", workers=2, batch_lines=8)
    assert failure(caught) == (
        "position 28: the chain breaks here: position 27 is missing or out of place "
        "(rows removed, inserted or reordered)"
    )


# --- the database changed after sealing -----------------------------------------------------------
def test_one_byte_edit_in_the_database_is_named(audit: Audit, tmp_path: Path) -> None:
    audit.seal()
    p = audit.position_of("Order.Placed", 1)
    state = audit.state_at(p)
    audit.set_state(p, state.replace(b'"0.01"', b'"0.02"', 1))
    problem = audit.verify_db().problem
    assert problem == (
        f"position {p}: the stored event differs from the sealed record (changed after sealing)"
    )
    with pytest.raises(AuditError, match=r"position \d+: the log does not match the signed"):
        audit.export(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_edit_hidden_by_rewriting_the_seal_table_hits_a_signed_checkpoint(audit: Audit) -> None:
    audit.seal()
    p = audit.position_of("Order.Filled")
    edited = audit.state_at(p).replace(b'"0.5"', b'"0.0"', 1)
    audit.set_state(p, edited)
    n = audit.log.at(p)
    assert n is not None
    from adapters.audit_store import notification_hash

    with audit.store.engine.begin() as conn:
        conn.execute(
            audit.store.leaves.update()
            .where(audit.store.leaves.c.position == p)
            .values(record_sha256=notification_hash(n).hex())
        )
    problem = audit.verify_db().problem
    assert problem is not None
    at = ((p - 1) // EVERY + 1) * EVERY
    assert problem.startswith(f"position {at}: the log does not match the signed checkpoint")
    assert f"positions {at - EVERY + 1}..{at}" in problem


def test_deleted_row_is_named(audit: Audit) -> None:
    audit.seal()
    p = audit.position_of("Order.Submitted", 1)
    audit.delete(p)
    assert audit.verify_db().problem == f"position {p}: sealed event is missing (deleted)"


def test_deleted_last_row_is_named(audit: Audit) -> None:
    audit.seal()
    head = audit.log.head()
    audit.delete(head)
    problem = audit.verify_db().problem
    assert problem is not None and problem.startswith(f"position {head}: sealed event is missing")


def test_inserted_row_is_named(audit: Audit) -> None:
    audit.seal()
    p = audit.position_of("Order.Acknowledged", 1)
    audit.insert_at(p, copy_of=p)
    problem = audit.verify_db().problem
    assert problem == (
        f"position {p}: an event was inserted here after sealing (the event sealed at "
        f"position {p} now sits at position {p + 1})"
    )


def test_inserted_row_before_the_log_is_named(audit: Audit) -> None:
    audit.seal()
    row = audit.sql("SELECT originator_id, originator_version, topic, state FROM {t} WHERE {p} = 3")
    forged: Any = UUID(int=0xBAD).hex if audit.url is None else UUID(int=0xBAD)
    audit.sql(
        "INSERT INTO {t} ({p}, originator_id, originator_version, topic, state) "
        "VALUES (0, ?, ?, ?, ?)",
        forged, row[0][1], row[0][2], row[0][3],
    )
    problem = audit.verify_db().problem
    assert problem is not None and problem.startswith("position 0: event not in the seal")


def test_swapped_rows_are_named(audit: Audit) -> None:
    audit.seal()
    p = audit.position_of("Order.Filled", 2)
    audit.swap(p, p + 1)
    assert audit.verify_db().problem == (
        f"position {p}: holds the event sealed at position {p + 1} (events removed or "
        "reordered after sealing)"
    )


def test_events_after_the_seal_are_reported_not_failed(audit: Audit) -> None:
    audit.sealer().run_once()
    audit.app.observe_mark("ETH-USDT", Decimal("3001"))
    report = audit.verify_db()
    assert report.problem is None and report.unsealed == 1
    assert report.notes  # events after the last checkpoint are only in the seal table


def test_rewritten_checkpoint_signature_is_refused(audit: Audit) -> None:
    audit.seal()
    other = Ed25519PrivateKey.generate()
    with audit.store.engine.begin() as conn:
        conn.execute(
            audit.store.checkpoints.update()
            .where(audit.store.checkpoints.c.tree_size == EVERY)
            .values(signature=base64.b64encode(other.sign(b"x")).decode())
        )
    problem = audit.verify_db().problem
    assert problem is not None and f"checkpoint at tree size {EVERY}" in problem


# --- the export changed after it was written ------------------------------------------------------
@pytest.fixture
def exported(audit: Audit, tmp_path: Path) -> tuple[Audit, Path]:
    audit.seal()
    audit.export(tmp_path / "clean")
    return audit, tmp_path / "clean"


def _copy(src: Path, dst: Path) -> tuple[Path, list[bytes]]:
    shutil.copytree(src, dst)
    return dst, (dst / "events.ndjson").read_bytes().splitlines(keepends=True)


def _write(directory: Path, lines: list[bytes]) -> None:
    (directory / "events.ndjson").write_bytes(b"".join(lines))


def _position(line: bytes) -> int:
    return int(json.loads(line)["position"])


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_export_tampering_is_named(exported: tuple[Audit, Path], tmp_path: Path) -> None:
    audit, clean = exported
    lines = (clean / "events.ndjson").read_bytes().splitlines(keepends=True)
    count = len(lines)

    def check(name: str, lines_: list[bytes] | None = None, **options: Any) -> str:
        directory, _ = _copy(clean, tmp_path / name)
        if lines_ is not None:
            _write(directory, lines_)
        with pytest.raises(Failure) as caught:
            audit.verify(directory, **options)
        return failure(caught)

    # one byte of one event's stored record
    i = 20
    value = json.loads(lines[i])
    record = bytearray(base64.b64decode(value["record"]))
    record[len(record) // 2] ^= 0x01
    edited = lines[i].replace(value["record"].encode(), base64.b64encode(bytes(record)))
    p = _position(lines[i])
    assert check("byte", [*lines[:i], edited, *lines[i + 1 :]]) == (
        f"position {p}: record_sha256 does not match the record (the event was changed)"
    )
    # the readable copy says something the record does not
    doctored = lines[i].replace(b'"timestamp":"2024', b'"timestamp":"2025', 1)
    assert check("readable", [*lines[:i], doctored, *lines[i + 1 :]]).startswith(
        f"position {p}: timestamp does not match"
    )
    placed = next(k for k, x in enumerate(lines) if b"Order.Placed" in x)
    cheaper = lines[placed].replace(b'"limit_price":"50000"', b'"limit_price":"40000"', 1)
    assert cheaper != lines[placed]
    assert check("state", [*lines[:placed], cheaper, *lines[placed + 1 :]]) == (
        f"position {_position(lines[placed])}: state does not match the record (the readable "
        "copy was edited)"
    )
    # a row removed, a row duplicated, two rows swapped
    assert check("delete", [*lines[:i], *lines[i + 1 :]]) == (
        f"position {p + 1}: the chain breaks here: position {p} is missing or out of place "
        "(rows removed, inserted or reordered)"
    )
    assert check("dup", [*lines[: i + 1], lines[i], *lines[i + 1 :]]) == (
        f"position {p}: out of order: it follows position {p}"
    )
    assert check("swap", [*lines[:i], lines[i + 1], lines[i], *lines[i + 2 :]]).startswith(
        f"position {p + 1}: the chain breaks here: position {p} is missing"
    )
    # the end cut off, at a line boundary and inside a line
    assert check("truncate", lines[:-3]) == (
        f"position {count}: missing: the file ends after position {count - 3} with "
        f"{count - 3} of the {count} events the manifest lists (truncated)"
    )
    assert check("torn", [*lines[:-1], lines[-1][:50]]) == (
        f"position {count}: line {count} is not valid JSON (truncated or edited)"
    )
    # the manifest edited
    directory, _ = _copy(clean, tmp_path / "manifest")
    manifest = json.loads((directory / MANIFEST).read_text())
    manifest["count"] -= 1
    (directory / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(Failure) as caught:
        audit.verify(directory)
    assert failure(caught).startswith("manifest: the signature does not verify")
    # re-signed with another key: refused by a pinned key, and by the embedded checkpoints
    other = Ed25519PrivateKey.generate()
    manifest["public_key"] = public_key_pem(other.public_key())
    del manifest["signature"]
    manifest["signature"] = sign_payload(other, manifest)
    (directory / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(Failure) as caught:
        audit.verify(directory)
    assert failure(caught) == (
        "manifest: the signature does not verify with the public key given (the manifest was "
        "changed after signing, or signed by another key)"
    )
    with pytest.raises(Failure) as caught:
        verify_export(directory)
    assert failure(caught) == (
        f"manifest: the checkpoint at tree size {EVERY} is not signed by the manifest's key"
    )


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_consistent_forgery_is_caught_only_by_pinning_the_key(
    audit: Audit, tmp_path: Path
) -> None:
    """An intruder re-exports an edited log with their own key and no checkpoints: every
    hash is consistent, so only a trusted public key can tell (and the output says so)."""
    intruder = Ed25519PrivateKey.generate()
    p = audit.position_of("Order.Placed")
    audit.set_state(p, audit.state_at(p).replace(b'"0.01"', b'"0.02"', 1))
    export_log(audit.log, None, tmp_path / "forged", key=intruder, clock=audit.clock)
    report = verify_export(tmp_path / "forged")
    assert report.key_source.startswith("embedded in the manifest (not independently trusted")
    with pytest.raises(Failure, match="signature does not verify with the public key given"):
        audit.verify(tmp_path / "forged")
    # ... and the approvals give it away even with the forger's key
    with pytest.raises(Failure) as caught:
        verify_export(tmp_path / "forged", keys=KEYS)
    assert failure(caught) == (
        f"position {p}: approval: approval digest does not match the command"
    )


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_csv_and_parquet_tampering_is_named(audit: Audit, tmp_path: Path) -> None:
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    audit.seal()
    audit.export(tmp_path / "csv", fmt="csv")
    path = tmp_path / "csv" / "events.csv"
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    rows[7][5] = rows[7][5].replace('"timestamp":"2024', '"timestamp":"2023')
    with path.open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    with pytest.raises(Failure) as caught:
        audit.verify(tmp_path / "csv")
    assert failure(caught) == (
        f"position {rows[7][0]}: state does not match the record (the readable copy was edited)"
    )

    audit.export(tmp_path / "pq", fmt="parquet")
    path = tmp_path / "pq" / "events.parquet"
    table = pq.read_table(path)
    records = table.column("record").to_pylist()
    records[11] = records[11] + b" "
    table = table.set_column(8, table.schema.field(8), pa.array(records, type=pa.binary()))
    pq.write_table(table, path)
    with pytest.raises(Failure) as caught:
        audit.verify(tmp_path / "pq")
    position = table.column("position")[11].as_py()
    assert failure(caught) == (
        f"position {position}: record_sha256 does not match the record (the event was changed)"
    )


# --- approvals re-verified with the HMAC keys -----------------------------------------------------
def test_forged_approvals_are_caught_with_the_hmac_keys(audit: Audit, tmp_path: Path) -> None:
    """Edits made before sealing pass the seal (it seals what it is given) but not the keys."""
    submitted = audit.position_of("Order.Submitted")
    state = json.loads(audit.state_at(submitted))
    fake = hashlib.sha256(b"forged").hexdigest()
    state["approval"]["signature"] = fake
    audit.set_state(submitted, json.dumps(state, separators=(",", ":")).encode())
    audit.seal()
    audit.export(tmp_path / "forged")
    audit.verify(tmp_path / "forged")  # integrity alone: fine
    with pytest.raises(Failure) as caught:
        audit.verify(tmp_path / "forged", keys=KEYS)
    assert failure(caught) == (
        f"position {submitted}: approval: approval signature does not verify"
    )
    with pytest.raises(Failure) as caught:
        audit.verify(tmp_path / "forged", keys=KeyRing.parse("k2:" + "t" * 40))
    assert "approval: unknown HMAC key id 'k1'" in failure(caught)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_missing_replayed_and_misbound_approvals_are_caught(audit: Audit, tmp_path: Path) -> None:
    def verdict(name: str) -> str:
        audit.export(tmp_path / name)
        with pytest.raises(Failure) as caught:
            audit.verify(tmp_path / name, keys=KEYS)
        return failure(caught)

    # an event without its approval
    ack = audit.position_of("Order.Acknowledged")
    original = audit.state_at(ack)
    state = json.loads(original)
    del state["approval"]
    audit.set_state(ack, json.dumps(state, separators=(",", ":")).encode())
    assert verdict("none") == f"position {ack}: approval: Order.Acknowledged carries no approval"
    # a genuine token replayed on another event of the same order
    submitted = audit.position_of("Order.Submitted")
    state["approval"] = json.loads(audit.state_at(submitted))["approval"]
    audit.set_state(ack, json.dumps(state, separators=(",", ":")).encode())
    assert verdict("replayed") == (
        f"position {ack}: approval: Order.Acknowledged needs a AcknowledgeOrder approval; "
        "the token approves SubmitOrder"
    )
    audit.set_state(ack, original)
    # a fill applied to the position for another price than approved
    applied = audit.position_of("Position.FillApplied", 1)
    audit.set_state(applied, audit.state_at(applied).replace(b'"50001"', b'"49001"', 1))
    assert verdict("price") == (
        f"position {applied}: approval: approval digest does not match the command"
    )


# --- the sealer -----------------------------------------------------------------------------------
def test_sealing_is_incremental_resumable_and_race_safe(audit: Audit) -> None:
    head = audit.log.head()
    first = audit.sealer()
    assert first.run_once(stop_at=17) == 17
    assert [c.tree_size for c in audit.store.list_checkpoints()] == [10]
    second = audit.sealer()
    stale = audit.store.state()
    assert second.run_once() == head - 17
    # a sealer that read the state before the other committed loses its commit
    from adapters.audit_store import SealConflict

    with pytest.raises(SealConflict):
        audit.store.commit(stale.tree_size, stale, [], [], "x")
    state = audit.store.state()
    sizes = [c.tree_size for c in audit.store.list_checkpoints()]
    assert sizes == list(range(EVERY, head + 1, EVERY))
    leaves = [bytes.fromhex(h) for _, _, h in audit.store.iter_leaves()]
    assert len(leaves) == head
    assert state.frontier.root() == merkle_root_of(leaves)
    assert audit.sealer().run_once() == 0
    assert audit.verify_db().problem is None


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_following_sealer_checkpoints_a_quiet_tail(audit: Audit) -> None:
    import threading
    import time

    stop = threading.Event()
    sealer = audit.sealer(every=1000)
    thread = threading.Thread(target=sealer.follow, args=(stop, 0.02, 0.1))
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not audit.store.list_checkpoints() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join()
    [checkpoint] = audit.store.list_checkpoints()
    assert checkpoint.tree_size == audit.log.head()


def test_inclusion_proof_round_trip(audit: Audit, tmp_path: Path) -> None:
    audit.seal()
    p = audit.position_of("Order.Placed", 2)
    proof = prove(audit.log, audit.store, p, audit.key.public_key())
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(proof))
    report = check_proof(path, audit.public_key)
    assert report.position == p and report.tree_size == audit.log.head()
    proof["record"] = base64.b64encode(base64.b64decode(proof["record"]) + b" ").decode()
    path.write_text(json.dumps(proof))
    with pytest.raises(Failure, match=f"position {p}: record_sha256 does not match"):
        check_proof(path, audit.public_key)
    audit.set_state(p, audit.state_at(p) + b" ")
    with pytest.raises(AuditError, match=f"position {p}: the stored event differs"):
        prove(audit.log, audit.store, p, None)


# --- the export target ----------------------------------------------------------------------------
@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_export_refuses_bad_targets_and_leaves_nothing_half_written(
    audit: Audit, tmp_path: Path
) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    with pytest.raises(AuditError, match="exists and is not empty"):
        audit.export(tmp_path / "full")
    (tmp_path / "file").write_text("")
    with pytest.raises(AuditError, match="exists and is not a directory"):
        audit.export(tmp_path / "file")
    with pytest.raises(AuditError, match="does not exist"):
        audit.export(tmp_path / "missing" / "out")
    with pytest.raises(AuditError, match="cannot write to /sys: "):
        audit.export(Path("/sys/ais-audit-export"))

    def crash(position: int, head: int) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        audit.export(tmp_path / "out", progress=crash, batch_size=7)
    assert sorted(os.listdir(tmp_path)) == ["file", "full", "home"]
    (tmp_path / "empty").mkdir()
    audit.export(tmp_path / "empty")  # an empty directory is fine
    assert (tmp_path / "empty" / MANIFEST).exists()


# --- the pure parts -------------------------------------------------------------------------------
def test_merkle_tree_matches_rfc6962_vectors() -> None:
    leaves = [
        b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43",
        bytes(range(0x50, 0x58)), bytes(range(0x60, 0x70)),
    ]
    roots = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
    assert merkle_root([]) == EMPTY_ROOT
    for n in range(1, 9):
        assert merkle_root(leaves[:n]).hex() == roots[n - 1]
        assert merkle_root_of(leaves[:n]).hex() == roots[n - 1]


def test_inclusion_proofs_for_every_leaf_of_small_trees() -> None:
    for size in range(1, 34):
        leaves = [hashlib.sha256(bytes([i])).digest() for i in range(size)]
        root = merkle_root_of(leaves)
        frontier = Frontier()
        for leaf in leaves:
            frontier.append(leaf)
        assert frontier.root() == root
        assert Frontier.from_json(size, frontier.to_json()).root() == root
        for index in range(size):
            path = inclusion_proof(iter(leaves), index, size)
            assert len(path) == len(proof_ranges(index, size))
            assert verify_inclusion(leaves[index], index, size, path, root)
            if path:
                assert not verify_inclusion(leaves[index], index, size, path[:-1], root)
                other = (index + 1) % size
                assert not verify_inclusion(leaves[other], index, size, path, root)


def test_render_state_shows_tagged_values_as_strings() -> None:
    stored = (
        b'{"timestamp":{"_type_":"datetime_iso","_data_":"2024-01-02T09:00:00+00:00"},'
        b'"price":{"_type_":"decimal_str","_data_":"1.50"},'
        b'"id":{"_type_":"uuid_hex","_data_":"0123456789abcdef0123456789abcdef"},'
        b'"text":"{\\"_type_\\":\\"decimal_str\\"}","odd":{"_type_":"other","_data_":"x"}}'
    )
    assert json.loads(render_state(stored)) == {
        "timestamp": "2024-01-02T09:00:00+00:00",
        "price": "1.50",
        "id": "01234567-89ab-cdef-0123-456789abcdef",
        "text": '{"_type_":"decimal_str"}',
        "odd": {"_type_": "other", "_data_": "x"},
    }


# --- the CLI, as a user runs it -------------------------------------------------------------------
def _environ(home: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AIS_")}
    environ.update(
        {"AIS_HOME": str(home), "AIS_RISK_HMAC_KEYS": f"k1:{SECRET}", "COLUMNS": "200"}
    )
    return environ


def ais(*calls: tuple[Path, list[str]]) -> list[subprocess.CompletedProcess[str]]:
    """Run `python -m interfaces.cli ARGS` for each (home, args), concurrently (each
    start-up imports the whole CLI, which is most of the time these tests take)."""
    running = [
        (
            args,
            subprocess.Popen(
                [sys.executable, "-m", "interfaces.cli", *args],
                cwd=ROOT,
                env=_environ(home),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for home, args in calls
    ]
    done = []
    for args, process in running:
        out, err = process.communicate(timeout=180)
        done.append(subprocess.CompletedProcess(args, process.returncode, out, err))
    return done


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result
    return result.stdout


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_cli_seal_export_verify_prove(audit: Audit, tmp_path: Path) -> None:
    home, out, bare = audit.home, tmp_path / "export", tmp_path / "bare"
    proof = tmp_path / "proof.json"
    sealed, exported, keyless, badformat = ais(
        (home, ["audit", "seal", "--checkpoint", "--every", "10"]),
        (home, ["audit", "export", "--out", str(out), "--format", "ndjson"]),
        (bare, ["audit", "export", "--out", str(tmp_path / "x")]),
        (home, ["audit", "export", "--out", str(tmp_path / "x"), "--format", "xml"]),
    )
    assert "45 sealed in all" in ok(sealed)
    assert "exported 45 events (positions 1..45)" in ok(exported)
    assert one_line(keyless) == (
        f"error: no audit signing key at {bare / 'keys' / 'audit-ed25519.pem'}: "
        "run `ais keys init`"
    )
    assert one_line(badformat) == "error: --format must be one of ndjson, csv, parquet, not 'xml'"

    proved, again, verified = ais(
        (home, ["audit", "prove", "7", "--out", str(proof)]),
        (home, ["audit", "export", "--out", str(out)]),
        (home, ["audit", "verify", str(out), "--public-key", str(audit.public_key),
                "--hmac-keys", f"k1:{SECRET}"]),
    )
    ok(proved)
    assert one_line(again) == f"error: {out} exists and is not empty; refusing to overwrite it"
    assert f"public key: --public-key {audit.public_key}" in ok(verified)
    assert "approvals: 20 state changes re-verified" in verified.stdout
    assert verified.stdout.strip().splitlines()[-1] == (
        f"verified 45 events, positions 1..45, merkle root "
        f"{json.loads((out / MANIFEST).read_text())['merkle_root']}"
    )

    lines = (out / "events.ndjson").read_bytes().splitlines(keepends=True)
    (out / "events.ndjson").write_bytes(b"".join(lines[:12] + lines[13:]))
    audit.set_state(9, audit.state_at(9).replace(b"{", b"{ ", 1))
    checked, broken, changed = ais(
        (home, ["audit", "check-proof", str(proof)]),
        (home, ["audit", "verify", str(out)]),
        (home, ["audit", "verify", "--db"]),
    )
    root = audit.store.list_checkpoints()[-1].merkle_root
    assert "public key: embedded in the proof" in ok(checked)
    assert f"position 7 is included in the signed tree of size 45, root {root}" in checked.stdout
    assert one_line(broken) == (
        "position 14: the chain breaks here: position 13 is missing or out of place "
        "(rows removed, inserted or reordered)"
    )
    assert one_line(changed) == (
        "position 9: the stored event differs from the sealed record (changed after sealing)"
    )


def test_checkpoint_created_at_comes_from_the_clock(audit: Audit) -> None:
    audit.seal()
    created = audit.store.list_checkpoints()[0].created_at
    assert datetime.fromisoformat(created) == audit.clock()
