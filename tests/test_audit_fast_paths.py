"""The audit's batch fast paths give exactly what the row-by-row rules give.

`ais audit export` renders a batch of rows with C-level passes (`render_states`,
`view_batch`, `ndjson_batch`) and `ais audit verify` rebuilds a block of lines the same
way; both fall back to the row-by-row code for anything unusual. These tests hold the
fast paths to the row-by-row output byte for byte, on random and on awkward records, and
check that the verifier's fast path accepts an export but leaves any edit to the line
checks that name it.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventsourcing.persistence import StoredEvent

from adapters.audit_export import _render_rows, export_log, render_batch, text_rows
from adapters.audit_store import RawLog, Record
from adapters.audit_verify import (
    Failure,
    _check_manifest,
    _fast_block,
    _key,
    _manifest,
    _RowChecker,
    verify_export,
)
from adapters.event_log import EventLog
from adapters.persistence import eventsourcing_env
from projections.audit_seal import Frontier, merkle_root_of, render_state, render_states

STAMP = b'{"timestamp":{"_type_":"datetime_iso","_data_":"2024-01-02T09:00:00+00:00"},'
PLAIN = (
    STAMP + b'"id":{"_type_":"uuid_hex","_data_":"0123456789abcdef0123456789abcdef"},'
    b'"qty":{"_type_":"decimal_str","_data_":"0.01"},"note":"caf\xc3\xa9"}'
)
AWKWARD = [
    PLAIN,
    b'{"no_timestamp":true}',  # the timestamp from the general rule (none)
    b'{"at":1,"timestamp":"2024-01-02"}',  # a timestamp, but not first
    b'{"timestamp":"a\\"b"}',  # a timestamp that needs escaping
    b'{"timestamp":""}',
    b"\xff\xfe not UTF-8",  # state and timestamp null
    b'{"timestamp":"t","x":\n1}',  # a newline in the stored bytes
    b'{"_type_":"decimal_str","_data_":{"_type_":"uuid_hex",'  # a tag inside a tag
    b'"_data_":"0123456789abcdef0123456789abcdef"}}',
    b"",
]
FRAGMENTS = [
    b'{"_type_":"',
    b"uuid_hex",
    b"decimal_str",
    b"datetime_iso",
    b'","_data_":"',
    b'"}',
    b"}",
    b'"',
    b"\\",
    b"0123456789abcdef0123456789abcdef",
    b"0123456789ABCDEF0123456789abcdef",
    b"1.5",
    b"{",
    b"\n",
    b'"_data_":',
    b'","_data_":',
    b"\xff",
    b'{"_type_":"uuid_hex","_data_":"0123456789abcdef0123456789abcdef"}',
    b'{"_type_":"datetime_iso","_data_":"2024-01-02T09:00:00+00:00"}',
]


def test_render_states_equals_render_state_on_random_records() -> None:
    rnd = random.Random(20240102)
    batched = 0
    for _ in range(3000):
        records = [
            b"".join(rnd.choice(FRAGMENTS) for _ in range(rnd.randint(0, 10)))
            for _ in range(rnd.randint(1, 5))
        ]
        rendered = render_states(records)
        if rendered is not None:
            batched += 1
            assert rendered == [render_state(r) for r in records], records
    assert batched > 1000  # the fast path is taken, not always refused
    assert render_states([PLAIN, PLAIN]) == [render_state(PLAIN)] * 2


@pytest.mark.parametrize("before", [0, 1, 3, 8, 13])
def test_frontier_append_many_builds_the_rfc_6962_tree(before: int) -> None:
    for n in range(0, 40):
        leaves = [bytes([i % 256]) * 32 for i in range(before + n)]
        frontier = Frontier()
        for leaf in leaves[:before]:
            frontier.append(leaf)
        frontier.append_many(leaves[before:])
        assert frontier.size == before + n
        assert frontier.root() == merkle_root_of(leaves)


def _rows(records: list[bytes], oid: str = "998460f3-93ca-5c7f-8ebd-be41ddcd2d5b") -> list[Record]:
    return [(10 + i, oid, i + 1, "domain.order:Order.Placed", r) for i, r in enumerate(records)]


@pytest.mark.parametrize("odd", range(len(AWKWARD)))
def test_ndjson_batch_is_byte_identical_to_row_by_row(odd: int) -> None:
    records = [PLAIN, PLAIN.replace(b"0.01", b"0.02"), AWKWARD[odd], PLAIN]
    rows = _rows(records)
    chains = [bytes([65 + i]) * 64 for i in range(len(rows))]
    slow = _render_rows(rows, "ndjson")
    fast = render_batch(rows, "ndjson")
    assert fast.digests == slow.digests and fast.positions == slow.positions
    assert text_rows(fast, chains) == text_rows(slow, chains)


@pytest.mark.parametrize("oid", ["caf\u00e9-id", 'a"b', "a\\b"])
def test_ids_needing_json_escapes_take_the_row_by_row_path(oid: str) -> None:
    rows = _rows([PLAIN, PLAIN], oid)
    chains = [b"c" * 64, b"d" * 64]
    assert text_rows(render_batch(rows, "ndjson"), chains) == text_rows(
        _render_rows(rows, "ndjson"), chains
    )


def _export(tmp_path: Path, records: list[bytes]) -> Path:
    """A SQLite log holding `records` (stored as given), exported to NDJSON."""
    env = eventsourcing_env(None, tmp_path / "home")
    log = EventLog(env)
    try:
        oid = uuid.UUID(int=7)
        log.recorder.insert_events(
            [StoredEvent(oid, i + 1, "domain.order:Order.Placed", r) for i, r in enumerate(records)]
        )
    finally:
        log.close()
    raw = RawLog(env)
    out = tmp_path / "out"
    try:
        export_log(
            raw,
            None,
            out,
            key=Ed25519PrivateKey.generate(),
            clock=lambda: datetime(2024, 1, 2, tzinfo=UTC),
            workers=0,
        )
    finally:
        raw.close()
    return out


def _block_checker(out: Path) -> _RowChecker:
    manifest = _manifest(out)
    key, source = _key(manifest, None)
    return _RowChecker(_check_manifest(manifest, key, source)[1], None)


def test_verify_fast_path_accepts_the_export_and_leaves_edits_to_the_line_checks(
    tmp_path: Path,
) -> None:
    records = [PLAIN.replace(b"0.01", f"0.{i:02d}".encode()) for i in range(1, 40)]
    out = _export(tmp_path, records)
    data = (out / "events.ndjson").read_bytes()
    assert _fast_block(data, _block_checker(out)) == len(records)
    assert verify_export(out, workers=0).count == len(records)
    edited = data.replace(b'"qty":"0.07"', b'"qty":"0.70"', 1)
    assert edited != data
    assert _fast_block(edited, _block_checker(out)) == 0
    (out / "events.ndjson").write_bytes(edited)
    with pytest.raises(Failure) as caught:
        verify_export(out, workers=0)
    assert str(caught.value) == (
        "position 7: state does not match the record (the readable copy was edited)"
    )


def test_awkward_records_export_and_verify(tmp_path: Path) -> None:
    out = _export(tmp_path, [PLAIN, *AWKWARD[:6], PLAIN, AWKWARD[7], AWKWARD[8]])
    report = verify_export(out, workers=0)
    assert report.count == 10
