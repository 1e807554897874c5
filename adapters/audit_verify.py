"""`ais audit verify DIR` and `ais audit check-proof FILE`: offline, files only, no database.

What an export's verification checks, in this order (the first failure is reported as
`manifest: ...` or `position N: ...` and nothing after it is trusted):

1. manifest: well formed, the Ed25519 signature over its canonical JSON (without the
   signature) verifies with the public key given (`--public-key`) or, failing that, the
   one embedded in the manifest (then only self-consistency is proven: compare the key's
   fingerprint with one you trust); every embedded database checkpoint is signed by that
   same key.
2. each row, in file order: the columns are all there with the right types; positions
   strictly increase within [first_position, last_position]; `record` decodes (base64);
   `record_sha256` = SHA-256 of the record encoding (position, originator id, version,
   topic and the stored bytes: editing any of them shows); `chain` = SHA-256(previous
   chain || record hash), starting from the manifest's `chain_prev` (a removed, inserted
   or reordered row breaks it at that row); `state` and `timestamp` are exactly the
   rendering of `record` (the human view cannot say something the record does not);
   where a signed checkpoint's tree size is reached, the chain (and, for an export from
   the log's start, the Merkle root) equals the checkpoint's.
3. end: the row count, first and last position, chain head and the RFC 6962 Merkle root
   over the record hashes equal the manifest's (a cut-off export names the position
   the manifest says should be there).
4. with HMAC keys (`--hmac-keys`): every approval, see `projections.audit_approvals`.

Memory is flat: rows are streamed in blocks of a few MB. A block written by `ais audit
export` is checked whole (`_fast_block`: every line rebuilt from its record as the
exporter writes it, compared byte for byte, hashed and rendered in C); a block where that
fails is checked line by line, where lines in the exporter's layout take a fast path and
any other valid JSON line the general path (parsed and compared value by value), and the
first failure is named.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import json
import multiprocessing
import operator
import os
import re
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from multiprocessing.pool import AsyncResult
from operator import itemgetter, methodcaller
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from adapters.audit_export import (
    COLUMNS,
    EXPORT_FORMAT,
    FORMATS,
    MANIFEST,
    data_file,
    ndjson_batch,
    record_digests,
    text_rows,
    view_batch,
)
from adapters.audit_store import PROOF_FORMAT, AuditError
from domain.approval import KeyRing
from projections.audit_approvals import ApprovalAuditor, ApprovalProblem, ApprovalStats
from projections.audit_seal import (
    EMPTY_ROOT,
    AuditFormatError,
    Checkpoint,
    Frontier,
    event_timestamp,
    event_timestamp_bytes,
    key_fingerprint,
    load_public_key_pem,
    record_bytes,
    render_state,
    signature_valid,
    verify_inclusion,
)

_sha256 = hashlib.sha256
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_MAX_MANIFEST = 64 << 20
# The layout `ais audit export` writes; anything else takes the general JSON path.
_HEAD = re.compile(
    rb'\{"position":(0|-?[1-9][0-9]*),"originator_id":"([^"\\\x00-\x1f]*)",'
    rb'"originator_version":(0|-?[1-9][0-9]*),"topic":"([^"\\\x00-\x1f]*)",'
    rb'"timestamp":(?:null|"([^"\\\x00-\x1f]*)"),"state":'
)
_TAIL = re.compile(
    rb',"record_sha256":"([0-9a-f]{64})","chain":"([0-9a-f]{64})","record":"([A-Za-z0-9+/]*={0,2})"\}\n?\Z'
)
_TAIL_LEN = len(b',"record_sha256":"') + 64 + len(b'","chain":"') + 64 + len(b'","record":"')
_CHAIN_KEY = b'","chain":"'
_RECORD_AT = slice(64 + len(b'","record":"'), -2)  # after the chain key
_hexlify = binascii.hexlify
_split_head = methodcaller("split", b'"', 12)
_HEAD_FIELDS = itemgetter(slice(2, 12, 3))  # ':P,', O, ':V,', T
_NUMBER = itemgetter(slice(1, -1))
_PLAIN_NAMES = re.compile(rb"[^\\\x00-\x1f]*")  # as `_HEAD` takes ids and topics
_b64decode = partial(binascii.a2b_base64, strict_mode=True)  # as b64decode(validate=True)
BLOCK_BYTES = 4 << 20  # lines are checked a block at a time


class Failure(Exception):
    """Verification failed; str() is the one line to print."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")


def _at(position: int | str, message: str) -> Failure:
    return Failure(f"position {position}", message)


@dataclass
class ExportReport:
    count: int
    first_position: int | None
    last_position: int | None
    merkle_root: str
    chain_head: str
    file_format: str
    key_source: str
    key_fingerprint: str
    checkpoints: int
    approvals: ApprovalStats | None = None
    general_path_rows: int = 0
    workers: int = 0


@dataclass
class _Expect:
    """What the manifest promises, and the running state of the check over a range of rows.

    A range may start mid-file (a worker's batch): `seen` is then the row index of its
    first row and `previous`/`chain` the position and chain value the row before it
    claims; the row checks link to those claims, so the ranges together check exactly
    what one pass would, and the batch's first failure is the file's first if every
    earlier batch passed.
    """

    first: int | None
    last: int | None
    count: int
    chain: bytes
    checkpoints: list[Checkpoint]
    first_leaf_index: int
    seen: int = 0
    previous: int | None = None
    frontier: Frontier = field(default_factory=Frontier)
    matched: int = 0
    cp_from: int = 0
    start_row: int = 0
    general_rows: int = 0
    # Merkle roots at checkpoints inside a batch that does not start at row 0 are checked
    # by the caller, which holds the tree of the rows before: (row, checkpoint, frontier).
    snapshots: list[tuple[int, Checkpoint, int, Frontier]] = field(default_factory=list)

    def starting_at(self, row: int, previous: int | None, chain: bytes) -> _Expect:
        """The same promises, for a range that starts at `row`."""
        before = [c for c in self.checkpoints if c.tree_size <= self.first_leaf_index + row]
        return _Expect(
            first=self.first,
            last=self.last,
            count=self.count,
            chain=chain,
            checkpoints=[c for c in self.checkpoints if c.tree_size > self.first_leaf_index + row],
            first_leaf_index=self.first_leaf_index,
            seen=row,
            previous=previous,
            cp_from=before[-1].last_position + 1 if before else (self.first or 0),
            start_row=row,
        )


# --- the manifest ----------------------------------------------------------------------------
def _manifest(directory: Path) -> dict[str, Any]:
    if not directory.exists():
        raise AuditError(f"{directory} does not exist")
    if not directory.is_dir():
        raise AuditError(f"{directory} is not a directory")
    path = directory / MANIFEST
    try:
        if path.stat().st_size > _MAX_MANIFEST:
            raise Failure("manifest", f"{MANIFEST} is implausibly large")
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Failure("manifest", f"{path} is missing") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise Failure("manifest", f"{MANIFEST} is not valid JSON: {exc}") from None
    except OSError as exc:
        raise AuditError(f"cannot read {path}: {exc.strerror}") from None
    if not isinstance(data, dict):
        raise Failure("manifest", "not a JSON object")
    return data


def _field(manifest: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    if name not in manifest:
        raise Failure("manifest", f"no {name!r}")
    value = manifest[name]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise Failure("manifest", f"{name!r} has the wrong type")
    return value


def _key(
    manifest: dict[str, Any], public_key: Path | None, what: str = "manifest"
) -> tuple[Ed25519PublicKey, str]:
    if public_key is not None:
        try:
            key = load_public_key_pem(public_key.read_bytes())
        except FileNotFoundError:
            raise AuditError(f"{public_key}: no such file") from None
        except OSError as exc:
            raise AuditError(f"cannot read {public_key}: {exc.strerror}") from None
        except AuditFormatError as exc:
            raise AuditError(f"{public_key}: {exc}") from None
        return key, f"--public-key {public_key}"
    try:
        key = load_public_key_pem(_field(manifest, "public_key", str))
    except AuditFormatError as exc:
        raise Failure(what, f"public_key: {exc}") from None
    return key, (
        f"embedded in the {what} (not independently trusted: compare its fingerprint, "
        "or pass --public-key)"
    )


def _check_manifest(
    manifest: dict[str, Any], key: Ed25519PublicKey, key_source: str
) -> tuple[str, _Expect]:
    unsigned = {k: v for k, v in manifest.items() if k != "signature"}
    try:
        valid = signature_valid(key, unsigned, manifest.get("signature"))
    except TypeError:
        raise Failure("manifest", "contains values that are not plain JSON") from None
    if not valid:
        raise Failure(
            "manifest",
            "the signature does not verify with the public key "
            + ("given" if key_source.startswith("--") else "it embeds")
            + " (the manifest was changed after signing, or signed by another key)",
        )
    if _field(manifest, "format", str) != EXPORT_FORMAT:
        raise Failure("manifest", f"unknown format {manifest['format']!r}")
    fmt = _field(manifest, "file_format", str)
    if fmt not in FORMATS or _field(manifest, "file", str) != data_file(fmt):
        raise Failure("manifest", f"unknown data file {manifest.get('file')!r}")
    if _field(manifest, "columns", list) != list(COLUMNS):
        raise Failure("manifest", "unexpected column list")
    count = _field(manifest, "count", int)
    first = _field(manifest, "first_position", (int, type(None)))
    last = _field(manifest, "last_position", (int, type(None)))
    for name in ("chain_prev", "chain_head", "merkle_root"):
        if not _HEX64.match(_field(manifest, name, str)):
            raise Failure("manifest", f"{name!r} is not a SHA-256 hex digest")
    checkpoints = []
    for raw in _field(manifest, "checkpoints", list):
        try:
            checkpoint = Checkpoint.from_dict(raw)
        except AuditFormatError as exc:
            raise Failure("manifest", str(exc)) from None
        if not checkpoint.verifies(key):
            raise Failure(
                "manifest",
                f"the checkpoint at tree size {checkpoint.tree_size} is not signed by the "
                "manifest's key",
            )
        checkpoints.append(checkpoint)
    checkpoints.sort(key=lambda c: c.tree_size)
    expect = _Expect(
        first=first,
        last=last,
        count=count,
        chain=bytes.fromhex(manifest["chain_prev"]),
        checkpoints=checkpoints,
        first_leaf_index=_field(manifest, "first_leaf_index", int),
    )
    expect.cp_from = first or 0
    return fmt, expect


# --- rows ---------------------------------------------------------------------------------------
class _RowChecker:
    """The per-row checks shared by every format."""

    def __init__(self, expect: _Expect, auditor: ApprovalAuditor | None) -> None:
        self.expect = expect
        self.auditor = auditor
        self.checkpoints = expect.checkpoints
        self.cp_index = 0  # of `next_cp` in `checkpoints`
        reached = expect.first_leaf_index + expect.seen
        while self.cp_index < len(self.checkpoints):
            if self.checkpoints[self.cp_index].tree_size > reached:
                break
            self.cp_index += 1
        self.next_cp = self._checkpoint(self.cp_index)

    def _checkpoint(self, index: int) -> Checkpoint | None:
        return self.checkpoints[index] if index < len(self.checkpoints) else None

    def order(self, position: int) -> None:
        e = self.expect
        if e.previous is not None and position <= e.previous:
            raise _at(position, f"out of order: it follows position {e.previous}")
        if e.seen == 0 and e.first is not None and e.count and position > e.first:
            raise _at(e.first, f"missing: the file starts at position {position} (removed)")
        if e.first is None or position < e.first or e.last is None or position > e.last:
            raise _at(
                position,
                f"not covered by the manifest (positions {e.first}..{e.last}): an inserted row",
            )
        if e.seen >= e.count:
            raise _at(position, f"the manifest lists only {e.count} events: an inserted row")

    def hashes(
        self,
        position: int,
        record_digest: bytes,
        claimed_digest: bytes | str,
        claimed_chain: bytes | str,
    ) -> None:
        e = self.expect
        digest_hex = record_digest.hex()
        wanted = digest_hex if isinstance(claimed_digest, str) else digest_hex.encode()
        if wanted != claimed_digest:
            raise _at(position, "record_sha256 does not match the record (the event was changed)")
        e.chain = _sha256(e.chain + record_digest).digest()
        chain_hex = e.chain.hex()
        if (chain_hex if isinstance(claimed_chain, str) else chain_hex.encode()) != claimed_chain:
            if e.previous is not None and position > e.previous + 1:
                raise _at(
                    position,
                    f"the chain breaks here: position {e.previous + 1} is missing or out of "
                    "place (rows removed, inserted or reordered)",
                )
            raise _at(
                position,
                "the chain breaks here (a row before it was removed, inserted or reordered, "
                "or its chain value edited)",
            )
        e.frontier.append(record_digest)
        e.seen += 1
        e.previous = position
        cp = self.next_cp
        if cp is not None and e.first_leaf_index + e.seen == cp.tree_size:
            if position != cp.last_position or chain_hex != cp.chain_head:
                raise _checkpoint_failure(cp, e.cp_from, position)
            if e.first_leaf_index == 0:  # the export's tree is the log's: roots comparable
                if e.start_row == 0:
                    if e.frontier.root().hex() != cp.merkle_root:
                        raise _checkpoint_failure(cp, e.cp_from, position)
                else:
                    e.snapshots.append((e.seen - 1, cp, e.cp_from, e.frontier.copy()))
            e.matched += 1
            e.cp_from = position + 1
            self.cp_index += 1
            self.next_cp = self._checkpoint(self.cp_index)

    def batch(
        self,
        positions: list[int],
        digests: list[bytes],
        claimed_chains: Sequence[bytes],
    ) -> bool:
        """Every check `order` and `hashes` make, for a batch of rows whose claimed record
        hashes the caller has compared with `digests`: one short loop for the chain, the
        rest in C. False, with nothing changed, when any row fails: the per-row path then
        names it."""
        e = self.expect
        n = len(positions)
        head, tail = positions[0], positions[-1]
        if (
            (e.previous is not None and head <= e.previous)
            or (e.seen == 0 and e.first is not None and e.count and head > e.first)
            or e.first is None
            or e.last is None
            or head < e.first
            or tail > e.last
            or e.seen + n > e.count
            or not all(map(operator.lt, positions, islice(positions, 1, None)))
        ):
            return False
        sha = _sha256
        chain = e.chain
        chains: list[bytes] = []
        append = chains.append
        for digest in digests:
            chain = sha(chain + digest).digest()
            append(chain)
        if list(map(_hexlify, chains)) != list(claimed_chains):
            return False
        frontier = e.frontier.copy()
        base, done, cp_index, cp_from = e.first_leaf_index + e.seen, 0, self.cp_index, e.cp_from
        snapshots: list[tuple[int, Checkpoint, int, Frontier]] = []
        cp, reached = self.next_cp, base
        while cp is not None and reached < cp.tree_size <= base + n:  # `hashes`' order
            reached = cp.tree_size
            j = reached - base - 1
            if positions[j] != cp.last_position or chains[j].hex() != cp.chain_head:
                return False
            if e.first_leaf_index == 0:  # the export's tree is the log's: roots comparable
                frontier.append_many(digests[done : j + 1])
                done = j + 1
                if e.start_row == 0:
                    if frontier.root().hex() != cp.merkle_root:
                        return False
                else:
                    snapshots.append((e.seen + j, cp, cp_from, frontier.copy()))
            cp_from = positions[j] + 1
            cp_index += 1
            cp = self._checkpoint(cp_index)
        frontier.append_many(digests[done:])
        e.frontier, e.chain, e.previous = frontier, chain, tail
        e.seen += n
        e.matched += cp_index - self.cp_index
        e.cp_from = cp_from
        e.snapshots += snapshots
        self.cp_index, self.next_cp = cp_index, cp
        return True

    def approvals(self, position: int, oid: str, ver: int, topic: str, state: Any) -> None:
        if self.auditor is None:
            return
        try:
            self.auditor.check(position, oid, ver, topic, state)
        except ApprovalProblem as exc:
            raise _at(position, f"approval: {exc}") from None

    def finish(self) -> None:
        e = self.expect
        if e.seen < e.count:
            after = f"after position {e.previous}" if e.previous is not None else "before any row"
            raise _at(
                e.last if e.last is not None else "?",
                f"missing: the file ends {after} with {e.seen} of the {e.count} events the "
                "manifest lists (truncated)",
            )
        if self.next_cp is not None and self.next_cp.last_position <= (e.last or 0):
            raise Failure(
                "manifest",
                f"the checkpoint at tree size {self.next_cp.tree_size} was never reached",
            )
        if self.auditor is not None:
            self.auditor.finish()


def _checkpoint_failure(cp: Checkpoint, since: int, position: int) -> Failure:
    return _at(
        position,
        f"does not match the signed checkpoint at tree size {cp.tree_size} (an event in "
        f"positions {since}..{position} differs from what was sealed)",
    )


def _decode_record(position: int, text: str | bytes) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _at(position, "record is not valid base64") from None


def _json_state(position: int, rendered: bytes) -> Any:
    try:
        return json.loads(rendered)
    except ValueError:
        raise _at(position, "the stored record is not valid JSON") from None


def _plain_hash(position: int, oid: str, ver: int, topic: str, record: bytes) -> bytes:
    try:
        return _sha256(record_bytes(position, oid, ver, topic, record)).digest()
    except AuditFormatError as exc:
        raise _at(position, str(exc)) from None


def _general_row(checker: _RowChecker, value: Any, line_no: int, wants_state: bool) -> None:
    """A row as JSON values (an NDJSON line in any layout): every check by value."""
    if not isinstance(value, dict):
        raise Failure(f"line {line_no}", "not a JSON object")
    position = value.get("position")
    if type(position) is not int:
        raise Failure(f"line {line_no}", "no integer position")
    if set(value) != set(COLUMNS):
        extra = sorted(set(value) ^ set(COLUMNS))
        raise _at(position, f"unexpected or missing fields: {', '.join(extra)}")
    oid, ver, topic = value["originator_id"], value["originator_version"], value["topic"]
    if not isinstance(oid, str) or type(ver) is not int or not isinstance(topic, str):
        raise _at(position, "originator_id, originator_version or topic has the wrong type")
    for name in ("record_sha256", "chain", "record"):
        if not isinstance(value[name], str):
            raise _at(position, f"{name} is not a string")
    checker.order(position)
    record = _decode_record(position, value["record"])
    digest = _plain_hash(position, oid, ver, topic, record)
    checker.hashes(position, digest, value["record_sha256"], value["chain"])
    state = _check_view(position, value["state"], value["timestamp"], record)
    if wants_state:
        checker.approvals(position, oid, ver, topic, state)


def _check_view(position: int, state: Any, timestamp: Any, record: bytes) -> Any:
    """A row's readable state and timestamp (JSON values) are the record's rendering."""
    rendered = render_state(record)
    try:
        rendered.decode("utf-8")
    except UnicodeDecodeError:
        if state is not None or timestamp is not None:
            raise _at(position, "state or timestamp given for a record that is not UTF-8") from None
        return None
    expected = _json_state(position, rendered)
    if state != expected:
        raise _at(position, "state does not match the record (the readable copy was edited)")
    if timestamp != event_timestamp(rendered):
        raise _at(position, "timestamp does not match the record")
    return expected


def _blocks(path: Path, start: int, end: int | None) -> Iterator[bytes]:
    """The file from byte `start` to `end` (None: to the end) in blocks of whole lines
    (the last may lack its newline), streamed."""
    with path.open("rb") as handle:
        handle.seek(start)
        left = b""
        remaining = None if end is None else end - start
        while remaining is None or remaining > 0:
            data = handle.read(BLOCK_BYTES if remaining is None else min(BLOCK_BYTES, remaining))
            if not data:
                break
            if remaining is not None:
                remaining -= len(data)
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                left += data
                continue
            yield left + data[:cut]
            left = data[cut:]
        if left:
            yield left


def _split_lines(block: bytes) -> list[bytes]:
    """A block's lines, each with its newline (only LF ends a line)."""
    lines = [line + b"\n" for line in block.split(b"\n")]
    lines[-1] = lines[-1][:-1]
    return lines if lines[-1] else lines[:-1]


def _fast_block(block: bytes, checker: _RowChecker) -> int:
    """Check a block of lines a batch at a time: rebuild each line from its record as the
    exporter writes it (hashing and rendering in C) and compare the block byte for byte,
    then `_RowChecker.batch`. Returns the lines checked; 0 (nothing checked) when a line
    differs from that rendering or fails a check, for the per-line path to name it."""
    if not block.endswith(b"\n"):
        return 0
    lines = block.split(b"\n")
    lines.pop()
    # '{"position":P,"originator_id":"O","originator_version":V,"topic":"T",...' split at
    # its quotes; whatever these yield, the rebuilt line must equal the line.
    heads = list(map(_HEAD_FIELDS, map(_split_head, lines)))
    if not heads or len(min(heads, key=len)) < 4:
        return 0
    positions_text, oids, vers_text, topics = zip(*heads, strict=True)
    if not _PLAIN_NAMES.fullmatch(b"".join(oids) + b"".join(topics)):
        return 0
    tails = list(map(itemgetter(2), map(methodcaller("rpartition", _CHAIN_KEY), lines)))
    chains = list(map(itemgetter(slice(0, 64)), tails))
    records_b64 = list(map(itemgetter(_RECORD_AT), tails))
    try:
        records = list(map(_b64decode, records_b64))
    except binascii.Error:
        return 0
    view = view_batch(records)
    if view is None:
        return 0
    try:
        positions = list(map(int, map(_NUMBER, positions_text)))
        versions = list(map(int, map(_NUMBER, vers_text)))
    except ValueError:
        return 0
    digests = record_digests(positions, oids, versions, topics, records)
    rows = ndjson_batch(positions, oids, versions, topics, *view, digests, records_b64)
    if text_rows(rows, chains) != block:  # so record_sha256, state, timestamp are right
        return 0
    return len(lines) if checker.batch(positions, digests, chains) else 0


def _check_lines(
    blocks: Iterable[bytes],
    checker: _RowChecker,
    wants_state: bool,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Every check of every NDJSON line: a block at a time where every line is in the
    exporter's layout (`_fast_block`), else line by line (a fast path for that layout too)."""
    line_no = checker.expect.start_row
    for block in blocks:
        checked = 0 if wants_state else _fast_block(block, checker)
        if checked:
            line_no += checked
            if progress is not None and checker.expect.previous is not None:
                progress(checker.expect.previous)
            continue
        line_no = _check_block_lines(_split_lines(block), checker, wants_state, line_no, progress)


def _check_block_lines(
    lines: Iterable[bytes],
    checker: _RowChecker,
    wants_state: bool,
    line_no: int,
    progress: Callable[[int], None] | None,
) -> int:
    """`_check_lines` one line at a time; returns the number of the last line checked."""
    head_match = _HEAD.match
    tail_match = _TAIL.match
    sha = _sha256
    for line in lines:
        line_no += 1
        head = head_match(line)
        tail_at = line.rfind(b'","record":"') - _TAIL_LEN + len(b'","record":"')
        tail = tail_match(line, tail_at) if head is not None and tail_at > 0 else None
        if head is None or tail is None:
            _slow_line(checker, line, line_no, wants_state)
            continue
        position_text, oid_bytes, ver_text, topic_bytes, stamp = head.groups()
        claimed_digest, claimed_chain, record_text = tail.groups()
        position = int(position_text)
        ver = int(ver_text)
        checker.order(position)
        record = _decode_record(position, record_text)
        digest = sha(b"%d\n%s\n%d\n%s\n" % (position, oid_bytes, ver, topic_bytes) + record)
        checker.hashes(position, digest.digest(), claimed_digest, claimed_chain)
        rendered = render_state(record)
        if line[head.end() : tail_at] != rendered:
            _slow_line(checker, line, line_no, wants_state, checked=True)
            continue
        if stamp != event_timestamp_bytes(rendered):
            raise _at(position, "timestamp does not match the record")
        if wants_state:
            checker.approvals(
                position,
                oid_bytes.decode("utf-8"),
                ver,
                topic_bytes.decode("utf-8"),
                _json_state(position, rendered),
            )
        if progress is not None and line_no % 10_000 == 0:
            progress(position)
    return line_no


def _slow_line(
    checker: _RowChecker,
    line: bytes,
    line_no: int,
    wants_state: bool,
    *,
    checked: bool = False,
) -> None:
    """The general path for one NDJSON line; `checked`: order and hashes are done."""
    try:
        value = json.loads(line)
    except ValueError:
        found = re.search(rb'"position":\s*(-?\d+)', line)
        where = (
            f"position {int(found.group(1))}"
            if found
            else f"line {line_no}"
            + (
                f" (after position {checker.expect.previous})"
                if checker.expect.previous is not None
                else ""
            )
        )
        raise Failure(where, f"line {line_no} is not valid JSON (truncated or edited)") from None
    checker.expect.general_rows += 1
    if checked:
        # The fast path checked order and hashes (the fixed layout held); only the state's
        # text differs from the canonical rendering: compare it as a JSON value.
        assert isinstance(value, dict)
        position = int(value["position"])
        if set(value) != set(COLUMNS):
            extra = sorted(set(value) ^ set(COLUMNS))
            raise _at(position, f"unexpected or missing fields: {', '.join(extra)}")
        record = _decode_record(position, value["record"])
        state = _check_view(position, value.get("state"), value.get("timestamp"), record)
        if wants_state:
            checker.approvals(
                position, value["originator_id"], value["originator_version"], value["topic"], state
            )
        return
    _general_row(checker, value, line_no, wants_state)


def _csv(
    path: Path, checker: _RowChecker, wants_state: bool, progress: Callable[[int], None] | None
) -> None:
    previous = csv.field_size_limit(sys.maxsize)  # a state field can be any size
    try:
        _csv_rows(path, checker, wants_state, progress)
    finally:
        csv.field_size_limit(previous)  # process-wide: leave other readers their limit


def _csv_rows(
    path: Path, checker: _RowChecker, wants_state: bool, progress: Callable[[int], None] | None
) -> None:
    with path.open("r", encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header != list(COLUMNS):
            raise Failure("manifest", f"{path.name} does not start with the expected header")
        for row_no, row in enumerate(reader, 2):
            if len(row) != len(COLUMNS):
                raise Failure(f"line {row_no}", f"{len(row)} fields instead of {len(COLUMNS)}")
            p, oid, ver_text, topic, ts, state, rh, chain, record_text = row
            try:
                position, ver = int(p), int(ver_text)
            except ValueError:
                raise Failure(f"line {row_no}", "position or version is not an integer") from None
            _text_row(
                checker,
                position,
                oid,
                ver,
                topic,
                ts or None,
                state or None,
                rh,
                chain,
                _decode_record(position, record_text),
                wants_state,
            )
            if progress is not None and row_no % 10_000 == 0:
                progress(position)


def _parquet(
    path: Path, checker: _RowChecker, wants_state: bool, progress: Callable[[int], None] | None
) -> None:
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    from adapters.audit_export import parquet_schema

    try:
        parquet = pq.ParquetFile(str(path))
    except (pa.ArrowException, OSError) as exc:
        raise Failure("manifest", f"{path.name} is not a readable Parquet file: {exc}") from None
    if not parquet.schema_arrow.equals(parquet_schema()):
        raise Failure("manifest", f"{path.name} does not have the expected columns")
    try:
        for batch in parquet.iter_batches(batch_size=5000):
            columns = [batch.column(i).to_pylist() for i in range(len(COLUMNS))]
            for position, oid, ver, topic, ts, state, rh, chain, record in zip(
                *columns, strict=True
            ):
                if position is None or ver is None or None in (oid, topic, rh, chain, record):
                    raise Failure(f"position {position}", "a required value is null")
                _text_row(
                    checker, position, oid, ver, topic, ts, state, rh, chain, record, wants_state
                )
            if progress is not None and columns[0]:
                progress(columns[0][-1])
    except pa.ArrowException as exc:
        raise Failure("manifest", f"{path.name} cannot be read: {exc}") from None


def _text_row(
    checker: _RowChecker,
    position: int,
    oid: str,
    ver: int,
    topic: str,
    ts: str | None,
    state: str | None,
    rh: str,
    chain: str,
    record: bytes,
    wants_state: bool,
) -> None:
    checker.order(position)
    digest = _plain_hash(position, oid, ver, topic, record)
    checker.hashes(position, digest, rh, chain)
    rendered = render_state(record)
    try:
        text: str | None = rendered.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if (state or None) != (text or None):  # CSV cannot tell an empty field from a null
        raise _at(position, "state does not match the record (the readable copy was edited)")
    if (ts or None) != ((event_timestamp(rendered) if text is not None else None) or None):
        raise _at(position, "timestamp does not match the record")
    if wants_state:
        checker.approvals(
            position, oid, ver, topic, None if text is None else _json_state(position, rendered)
        )


# --- the whole export ---------------------------------------------------------------------------
PARALLEL_MIN_BYTES = 48 << 20  # smaller files: worker start-up costs more than it saves
BATCH_LINES = 1 << 13  # a power of two: each full batch is a perfect Merkle subtree


def default_workers(path: Path) -> int:
    try:
        size = path.stat().st_size
    except OSError:
        return 0
    if size < PARALLEL_MIN_BYTES:
        return 0
    return max(0, min(4, os.cpu_count() or 1))


@dataclass
class _Batch:
    """What a worker found in one batch of lines."""

    rows: int
    previous: int | None
    chain: bytes
    frontier: Frontier
    matched: int
    cp_from: int
    snapshots: list[tuple[int, Checkpoint, int, Frontier]]
    general_rows: int
    failure: str | None
    failure_row: int | None


def _verify_batch(path: str, start: int, end: int, expect: _Expect) -> _Batch:
    checker = _RowChecker(expect, None)
    failure: str | None = None
    try:
        _check_lines(_blocks(Path(path), start, end), checker, False)
    except Failure as exc:
        failure = str(exc)
    except UnicodeDecodeError:
        failure = f"position {expect.previous}: a line after it is not valid UTF-8"
    e = checker.expect
    return _Batch(
        rows=e.seen - e.start_row,
        previous=e.previous,
        chain=e.chain,
        frontier=e.frontier,
        matched=e.matched,
        cp_from=e.cp_from,
        snapshots=e.snapshots,
        general_rows=e.general_rows,
        failure=failure,
        failure_row=e.seen if failure is not None else None,
    )


def _claims(line: bytes) -> tuple[int | None, bytes]:
    """The position and chain value a line claims (for the next batch to link to)."""
    head = _HEAD.match(line)
    tail_at = line.rfind(b'","record":"') - _TAIL_LEN + len(b'","record":"')
    tail = _TAIL.match(line, tail_at) if head is not None and tail_at > 0 else None
    if head is not None and tail is not None:
        return int(head.group(1)), bytes.fromhex(tail.group(2).decode("ascii"))
    try:
        value = json.loads(line)
        return int(value["position"]), bytes.fromhex(value["chain"])
    except (ValueError, TypeError, KeyError):
        return None, bytes(32)  # the batch holding this line reports it first


def _scan(path: Path, lines: int) -> Iterator[tuple[int, int, int, bytes | None]]:
    """(start, end, first row, last line of the previous batch) for batches of `lines`."""
    block = 16 << 20
    with path.open("rb") as handle, path.open("rb") as reader:
        offset = 0  # of the current block in the file
        start, row, counted = 0, 0, 0
        previous_line: bytes | None = None
        last_newline = -1  # absolute offset of the newline before the current one
        while True:
            data = handle.read(block)
            if not data:
                break
            i = 0
            while True:
                need = lines - counted
                if data.count(b"\n", i) < need:
                    counted += data.count(b"\n", i)
                    found = data.rfind(b"\n", i)
                    if found >= 0:
                        last_newline = offset + found
                    break
                for _ in range(need):
                    j = data.find(b"\n", i)
                    if _ < need - 1:
                        last_newline = offset + j
                    i = j + 1
                end = offset + i
                yield start, end, row, previous_line
                reader.seek(last_newline + 1)
                previous_line = reader.read(end - last_newline - 1)
                last_newline = end - 1
                start, row, counted = end, row + lines, 0
            offset += len(data)
        if offset > start:
            yield start, offset, row, previous_line


def _parallel_ndjson(
    path: Path,
    expect: _Expect,
    workers: int,
    lines: int,
    progress: Callable[[int], None] | None,
) -> None:
    """Verify the file in batches on `workers` processes; results are taken in file order
    (at most two batches per worker in flight), so the first failure is the file's first."""
    context = multiprocessing.get_context("spawn")
    frontier = Frontier()
    with context.Pool(workers) as pool:
        batches = _scan(path, lines)
        pending: deque[AsyncResult[_Batch]] = deque()

        def submit() -> None:
            found = next(batches, None)
            if found is None:
                return
            start, end, row, previous_line = found
            previous, chain = (None, expect.chain)
            if previous_line is not None:
                previous, chain = _claims(previous_line)
            task = expect.starting_at(row, previous, chain)
            pending.append(pool.apply_async(_verify_batch, (str(path), start, end, task)))

        for _ in range(2 * workers):
            submit()
        while pending:
            batch = pending.popleft().get()
            submit()
            for row, checkpoint, since, local in batch.snapshots:
                if batch.failure_row is not None and row >= batch.failure_row:
                    break
                tree = frontier.copy()
                tree.extend(local)
                if tree.root().hex() != checkpoint.merkle_root:
                    raise _checkpoint_failure(checkpoint, since, checkpoint.last_position)
            if batch.failure is not None:
                where, _, message = batch.failure.partition(": ")
                raise Failure(where, message)
            frontier.extend(batch.frontier)
            expect.seen += batch.rows
            expect.previous = batch.previous if batch.rows else expect.previous
            expect.chain = batch.chain
            expect.matched += batch.matched
            expect.cp_from = batch.cp_from
            expect.general_rows += batch.general_rows
            if progress is not None and expect.previous is not None:
                progress(expect.previous)
    expect.frontier = frontier


def verify_export(
    directory: Path,
    *,
    public_key: Path | None = None,
    keys: KeyRing | None = None,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    batch_lines: int = BATCH_LINES,
) -> ExportReport:
    """Raise Failure (one line) on the first problem; otherwise describe what was verified.

    `workers`: processes checking an NDJSON file in batches (None: by the file's size and
    the CPUs; 0: this process only). Approvals (`keys`) are always checked in one pass.
    """
    manifest = _manifest(directory)
    key, key_source = _key(manifest, public_key)
    fmt, expect = _check_manifest(manifest, key, key_source)
    path = directory / data_file(fmt)
    if not path.is_file():
        raise Failure("manifest", f"{path.name} is missing")
    if batch_lines < 1 or batch_lines & (batch_lines - 1):
        raise ValueError("batch_lines must be a power of two")
    auditor = ApprovalAuditor(keys) if keys is not None else None
    if workers is None:
        workers = default_workers(path)
    if fmt != "ndjson" or auditor is not None:
        workers = 0
    total = expect.last or 0

    def step(position: int) -> None:
        if progress is not None:
            progress(position, total)

    checker = _RowChecker(expect, auditor)
    try:
        if fmt == "ndjson" and workers > 1:
            _parallel_ndjson(path, expect, workers, batch_lines, step)
            checker = _RowChecker(expect, None)
        elif fmt == "ndjson":
            _check_lines(_blocks(path, 0, None), checker, auditor is not None, step)
        elif fmt == "csv":
            _csv(path, checker, auditor is not None, step)
        else:
            _parquet(path, checker, auditor is not None, step)
    except UnicodeDecodeError:
        raise Failure(
            f"position {expect.previous}", f"a line after it in {path.name} is not valid UTF-8"
        ) from None
    except csv.Error as exc:
        raise Failure("manifest", f"{path.name} is not valid CSV: {exc}") from None
    checker.finish()
    root = expect.frontier.root() if expect.seen else EMPTY_ROOT
    if expect.previous != expect.last:
        raise Failure(
            "manifest", f"last_position {expect.last} but the file ends at {expect.previous}"
        )
    if expect.chain.hex() != manifest["chain_head"]:
        raise _at(
            expect.last if expect.last is not None else "?",
            "the chain head does not match the signed manifest (an event at or before it was "
            "changed and the hashes after it recomputed)",
        )
    if root.hex() != manifest["merkle_root"]:
        raise Failure("manifest", "the Merkle root of the records does not match the signed one")
    return ExportReport(
        count=expect.seen,
        first_position=expect.first,
        last_position=expect.last,
        merkle_root=root.hex(),
        chain_head=expect.chain.hex(),
        file_format=fmt,
        key_source=key_source,
        key_fingerprint=key_fingerprint(key),
        checkpoints=expect.matched,
        approvals=auditor.stats if auditor is not None else None,
        general_path_rows=expect.general_rows,
        workers=workers if workers > 1 else 0,
    )


# --- proofs ----------------------------------------------------------------------------------
@dataclass
class ProofReport:
    position: int
    tree_size: int
    merkle_root: str
    key_source: str
    key_fingerprint: str


def check_proof(path: Path, public_key: Path | None = None) -> ProofReport:
    """Verify a proof file from `ais audit prove`: the record, the path, the signature."""
    try:
        proof = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AuditError(f"{path}: no such file") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise Failure("proof", f"not valid JSON: {exc}") from None
    except OSError as exc:
        raise AuditError(f"cannot read {path}: {exc.strerror}") from None
    if not isinstance(proof, dict) or proof.get("format") != PROOF_FORMAT:
        raise Failure("proof", "not an ais audit proof")
    key, key_source = _key(proof, public_key, "proof")
    try:
        checkpoint = Checkpoint.from_dict(proof.get("checkpoint"))
        position = _field(proof, "position", int)
        index = _field(proof, "leaf_index", int)
        size = _field(proof, "tree_size", int)
        path_hex = _field(proof, "proof", list)
        record = base64.b64decode(_field(proof, "record", str), validate=True)
        digest = _sha256(
            record_bytes(
                position,
                _field(proof, "originator_id", str),
                _field(proof, "originator_version", int),
                _field(proof, "topic", str),
                record,
            )
        ).digest()
        nodes = [bytes.fromhex(h) for h in path_hex]
    except (AuditFormatError, binascii.Error, ValueError, TypeError) as exc:
        raise Failure("proof", f"malformed: {exc}") from None
    if not checkpoint.verifies(key):
        raise Failure("proof", "the checkpoint's signature does not verify with the public key")
    if digest.hex() != proof.get("record_sha256"):
        raise _at(position, "record_sha256 does not match the record in the proof")
    if size != checkpoint.tree_size or position > checkpoint.last_position:
        raise Failure("proof", "the proof is not for the tree of its checkpoint")
    if not verify_inclusion(digest, index, size, nodes, bytes.fromhex(checkpoint.merkle_root)):
        raise _at(position, "the inclusion proof does not lead to the checkpoint's Merkle root")
    return ProofReport(position, size, checkpoint.merkle_root, key_source, key_fingerprint(key))
