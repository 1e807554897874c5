"""`ais audit export`: the log, streamed in batches, with its hash chain and a signed manifest.

Files in the export directory (DESIGN.md, "Export format"):

- `events.ndjson` (or `events.csv`, `events.parquet`): one event per line/row with the
  columns `position, originator_id, originator_version, topic, timestamp, state,
  record_sha256, chain, record`. `state` is the event for people to read (the stored
  JSON with Decimal/UUID/datetime shown as strings, `projections.audit_seal.render_state`);
  `record` is the exact stored state bytes (base64; raw binary in Parquet), so anyone can
  recompute `record_sha256` and the chain, and check that `state` is what the record says.
- `manifest.json`: count, first and last position, the chain link before the first
  exported event (`chain_prev`, 32 zero bytes when the export starts at the log's start)
  and after the last (`chain_head`), the RFC 6962 Merkle root over the exported record
  hashes, the signed database checkpoints that fall in the range (so the export also
  proves the log still matches what was sealed earlier), tool version, created at, the
  public key (PEM), and an Ed25519 signature over the canonical JSON of everything else.

Memory stays flat (one read batch at a time); the export is written into a temporary
directory beside the target and renamed into place only when complete, so a failure
leaves nothing half-written.

Speed: an NDJSON batch is built column by column (`_ndjson_batch`: C-level `map`s over
hashlib, binascii and bytes formatting, one regex pass per tag kind for the readable
states, the Merkle leaves added as whole subtrees), with Python work per batch rather
than per row, except the hash chain's one short loop. Anything unusual in a batch (ids
needing JSON escapes, a record that is not UTF-8 or holds a newline) sends the batch to
the row-by-row rule `_render_rows`, which the fast path matches byte for byte.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import tempfile
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from itertools import repeat
from multiprocessing.pool import AsyncResult
from operator import methodcaller
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from adapters.audit_store import (
    READ_BATCH,
    AuditError,
    AuditStore,
    Progress,
    RawLog,
    Record,
    notification_hash,
)
from projections.audit_seal import (
    RECORD_ENCODING,
    ZERO_LINK,
    Checkpoint,
    Frontier,
    event_timestamp,
    key_fingerprint,
    public_key_pem,
    render_joined,
    render_state,
    sign_payload,
)

EXPORT_FORMAT = "ais-audit-export/1"
FORMATS = ("ndjson", "csv", "parquet")
COLUMNS = (
    "position",
    "originator_id",
    "originator_version",
    "topic",
    "timestamp",
    "state",
    "record_sha256",
    "chain",
    "record",
)
MANIFEST = "manifest.json"
_sha256 = hashlib.sha256
_digest = type(_sha256()).digest
_hexlify = binascii.hexlify
_b64 = partial(binascii.b2a_base64, newline=False)
PARALLEL_MIN_EVENTS = 50_000  # below this, worker processes cost more than they save
TASK_POSITIONS = 8192  # positions per worker task


def tool_version() -> str:
    try:
        return f"ais {version('ais')}"
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "ais (unknown version)"


def data_file(fmt: str) -> str:
    return f"events.{fmt}"


# --- the target directory ------------------------------------------------------------------
def _check_target(out: Path) -> Path:
    """Refuse a non-empty or unusable target before any work; returns its parent."""
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise AuditError(f"{out} exists and is not a directory")
        try:
            if any(out.iterdir()):
                raise AuditError(f"{out} exists and is not empty; refusing to overwrite it")
        except PermissionError:
            raise AuditError(f"{out}: permission denied") from None
    parent = out.absolute().parent
    if not parent.exists():
        raise AuditError(f"{parent} does not exist; create it first")
    if not parent.is_dir():
        raise AuditError(f"{parent} is not a directory")
    return parent


def _temp_dir(parent: Path, name: str) -> Path:
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=parent))
    except PermissionError:
        raise AuditError(f"cannot write to {parent}: permission denied") from None
    except OSError as exc:
        raise AuditError(f"cannot write to {parent}: {exc.strerror}") from None
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    return tmp


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(tmp: Path, out: Path) -> None:
    """Rename the finished export into place (an empty target directory is replaced)."""
    for child in tmp.iterdir():
        _fsync(child)
    _fsync(tmp)
    try:
        os.rename(tmp, out)
    except OSError as exc:
        raise AuditError(f"cannot move the export into {out}: {exc.strerror}") from None
    _fsync(out.absolute().parent)


# --- rendering (pure: runs in the exporting process or in a worker process) ----------------
_JSON_CACHE: dict[str, bytes] = {}


def _json_str(value: str) -> bytes:
    """A JSON string literal; plain printable ASCII (every id, topic, timestamp) directly."""
    if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return b'"' + value.encode("ascii") + b'"'
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def _cached_json(value: str) -> bytes:
    found = _JSON_CACHE.get(value)
    if found is None:
        found = _json_str(value)
        if len(_JSON_CACHE) < 10_000:
            _JSON_CACHE[value] = found
    return found


def _csv_field(value: bytes) -> bytes:
    """RFC 4180: quote a field holding a comma, quote, CR or LF; double its quotes."""
    if b'"' in value or b"," in value or b"\n" in value or b"\r" in value:
        return b'"' + value.replace(b'"', b'""') + b'"'
    return value


def _view(record: bytes) -> tuple[bytes | None, bytes | None]:
    """The readable state (None unless UTF-8) and the event's timestamp (None if none)."""
    rendered = render_state(record)
    if not rendered.isascii():
        try:
            rendered.decode("utf-8")
        except UnicodeDecodeError:
            return None, None
    stamp = event_timestamp(rendered)
    return rendered, None if stamp is None else stamp.encode("utf-8")


# Every event the domain records starts with its timestamp, a JSON string that needs no
# escaping; a batch where one does not gets each row's from `_view`.
_STAMP_KEY = b'{"timestamp":"'
_PLAIN_TEXT = re.compile(rb"[ !#-\[\]-~]+")  # printable ASCII but quote and backslash
_RECORD_HEAD = b"%d\n%s\n%d\n%s\n"
_NDJSON_HEAD = (
    b'{"position":%d,"originator_id":"%s","originator_version":%d,"topic":"%s",'
    b'"timestamp":%s,"state":%s,"record_sha256":"%s","chain":"'
)
_NDJSON_TAIL = b'","record":"%s"}\n'


def view_batch(records: Sequence[bytes]) -> tuple[list[bytes], list[bytes]] | None:
    """For a batch: each record's readable state and its `timestamp` as the JSON the
    export writes (a string or `null`), exactly as `_view` gives them one by one, but in
    a few C-level passes. None when a record is not UTF-8 or needs `_view`'s slow path."""
    blob = render_joined(records) if records else None
    if blob is None:
        return None
    if not blob.isascii():
        try:
            blob.decode("utf-8")
        except UnicodeDecodeError:
            return None
    states = blob.split(b"\n")
    if all(map(methodcaller("startswith", _STAMP_KEY), states)):
        ends = list(map(methodcaller("find", b'"', len(_STAMP_KEY)), states))
        if -1 not in ends:
            starts = repeat(len(_STAMP_KEY))
            stamps = list(map(bytes.__getitem__, states, map(slice, starts, ends)))
            if all(stamps) and _PLAIN_TEXT.fullmatch(b"".join(stamps)):
                return states, list(map(b'"%s"'.__mod__, stamps))
    found = (_view(record)[1] for record in records)
    return states, [b"null" if f is None else _json_str(f.decode("utf-8")) for f in found]


def record_digests(
    positions: Sequence[int],
    originator_ids: Sequence[bytes],
    versions: Sequence[int],
    topics: Sequence[bytes],
    records: Sequence[bytes],
) -> list[bytes]:
    """The record hashes of a batch (`projections.audit_seal.record_hash`, whose newline
    check the caller has made), hashed by C-level `map`s."""
    heads = map(_RECORD_HEAD.__mod__, zip(positions, originator_ids, versions, topics, strict=True))
    return list(map(_digest, map(_sha256, map(bytes.__add__, heads, records))))


def _plain_names(values: Sequence[str]) -> bool:
    """Ids or topics that are their own JSON string content (printable ASCII, no quote,
    backslash or newline), as `_json_str` writes them."""
    joined = "".join(values)
    return joined.isascii() and joined.isprintable() and '"' not in joined and "\\" not in joined


@dataclass
class Rendered:
    """A batch of exported rows, everything but the chain values (which need the order).

    ``pieces`` holds, per row, the output before and after its chain value (NDJSON and
    CSV), or the Parquet columns without the chain column.
    """

    positions: list[int]
    digests: list[bytes]
    pieces: list[Any]


def render_batch(rows: list[Record], fmt: str) -> Rendered:
    """A batch of stored rows as export rows (see `Rendered`)."""
    if fmt == "ndjson" and rows:
        fast = _ndjson_batch(rows)
        if fast is not None:
            return fast
    return _render_rows(rows, fmt)


def _ndjson_batch(rows: list[Record]) -> Rendered | None:
    """NDJSON rows built column by column with C-level `map`s: the same bytes as
    `_render_rows`, for batches of plain rows (None: let `_render_rows` do it)."""
    positions, oids, vers, topics, records = map(list, zip(*rows, strict=True))
    if not (_plain_names(oids) and _plain_names(topics)):
        return None
    view = view_batch(records)
    if view is None:
        return None
    states, stamps = view
    oid_bytes = "\n".join(oids).encode("ascii").split(b"\n")
    topic_bytes = "\n".join(topics).encode("ascii").split(b"\n")
    digests = record_digests(positions, oid_bytes, vers, topic_bytes, records)
    return ndjson_batch(
        positions, oid_bytes, vers, topic_bytes, states, stamps, digests, list(map(_b64, records))
    )


def ndjson_batch(
    positions: list[int],
    originator_ids: Sequence[bytes],
    versions: Sequence[int],
    topics: Sequence[bytes],
    states: Sequence[bytes],
    stamps: Sequence[bytes],
    digests: list[bytes],
    records_b64: Sequence[bytes],
) -> Rendered:
    """NDJSON rows from their columns (ids and topics plain, `view_batch`'s states and
    timestamps): what the exporter writes and the verifier compares lines with."""
    fields = zip(
        positions,
        originator_ids,
        versions,
        topics,
        stamps,
        states,
        map(_hexlify, digests),
        strict=True,
    )
    pieces: list[bytes] = [b""] * (2 * len(positions))
    pieces[0::2] = map(_NDJSON_HEAD.__mod__, fields)
    pieces[1::2] = map(_NDJSON_TAIL.__mod__, records_b64)
    return Rendered(positions, digests, pieces)


def _render_rows(rows: list[Record], fmt: str) -> Rendered:
    """Any batch in any format, row by row (the general rule `_ndjson_batch` follows)."""
    sha = _sha256
    b64 = base64.b64encode
    positions: list[int] = []
    digests: list[bytes] = []
    pieces: list[Any] = []
    columns: list[list[Any]] = [[] for _ in range(8)]
    for position, oid, ver, topic, record in rows:
        if "\n" in topic or "\n" in oid:
            raise AuditError(f"position {position}: a newline in the topic or originator id")
        oid_bytes, topic_bytes = oid.encode("utf-8"), topic.encode("utf-8")
        rh = sha(b"%d\n%s\n%d\n%s\n" % (position, oid_bytes, ver, topic_bytes) + record)
        positions.append(position)
        digests.append(rh.digest())
        state, stamp = _view(record)
        if fmt == "ndjson":
            pieces.append(
                b'{"position":%d,"originator_id":%s,"originator_version":%d,"topic":%s,'
                b'"timestamp":%s,"state":%s,"record_sha256":"%s","chain":"'
                % (
                    position,
                    _cached_json(oid),
                    ver,
                    _cached_json(topic),
                    b"null" if stamp is None else _json_str(stamp.decode("utf-8")),
                    b"null" if state is None else state,
                    rh.hexdigest().encode("ascii"),
                )
            )
            pieces.append(b'","record":"' + b64(record) + b'"}\n')
        elif fmt == "csv":
            pieces.append(
                b"%d,%s,%d,%s,%s,%s,%s,"
                % (
                    position,
                    _csv_field(oid_bytes),
                    ver,
                    _csv_field(topic_bytes),
                    b"" if stamp is None else _csv_field(stamp),
                    b"" if state is None else _csv_field(state),
                    rh.hexdigest().encode("ascii"),
                )
            )
            pieces.append(b"," + b64(record) + b"\n")
        else:
            for column, value in zip(
                columns,
                (
                    position,
                    oid,
                    ver,
                    topic,
                    None if stamp is None else stamp.decode("utf-8"),
                    None if state is None else state.decode("utf-8"),
                    rh.hexdigest(),
                    record,
                ),
                strict=True,
            ):
                column.append(value)
    return Rendered(positions, digests, columns if fmt == "parquet" else pieces)


def text_rows(batch: Rendered, chains: list[bytes]) -> bytes:
    """A rendered NDJSON or CSV batch as its output bytes: each row's pieces around its
    chain value (the file writer and the HTTP stream emit exactly these bytes)."""
    pieces = batch.pieces
    out: list[bytes] = [b""] * (3 * len(chains))
    out[0::3] = pieces[0::2]
    out[1::3] = chains
    out[2::3] = pieces[1::2]
    return b"".join(out)


# --- writers -------------------------------------------------------------------------------------
class _Writer:
    def write(self, batch: Rendered, chains: list[bytes]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _TextWriter(_Writer):
    """NDJSON or CSV: each row's pieces around its chain value."""

    def __init__(self, path: Path, header: bytes = b"") -> None:
        self.handle: IO[bytes] = path.open("xb", buffering=1 << 20)
        self.handle.write(header)

    def write(self, batch: Rendered, chains: list[bytes]) -> None:
        self.handle.write(text_rows(batch, chains))

    def close(self) -> None:
        self.handle.close()


def parquet_schema() -> Any:
    import pyarrow as pa  # type: ignore[import-untyped]

    return pa.schema(
        [
            ("position", pa.int64()),
            ("originator_id", pa.string()),
            ("originator_version", pa.int64()),
            ("topic", pa.string()),
            ("timestamp", pa.string()),
            ("state", pa.string()),
            ("record_sha256", pa.string()),
            ("chain", pa.string()),
            ("record", pa.binary()),
        ]
    )


class _ParquetWriter(_Writer):
    """One row group per batch; `record` is the raw stored bytes (a binary column)."""

    def __init__(self, path: Path) -> None:
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        self.schema = parquet_schema()
        self.writer = pq.ParquetWriter(str(path), self.schema, compression="zstd")

    def write(self, batch: Rendered, chains: list[bytes]) -> None:
        import pyarrow as pa

        values = [*batch.pieces[:7], [c.decode("ascii") for c in chains], batch.pieces[7]]
        arrays = [pa.array(v, type=f.type) for v, f in zip(values, self.schema, strict=True)]
        self.writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema))

    def close(self) -> None:
        self.writer.close()


def _writer(fmt: str, path: Path) -> _Writer:
    if fmt == "ndjson":
        return _TextWriter(path)
    if fmt == "csv":
        return _TextWriter(path, (",".join(COLUMNS) + "\n").encode("ascii"))
    return _ParquetWriter(path)


# --- worker processes ----------------------------------------------------------------------------
_WORKER_LOG: RawLog | None = None


def _worker_init(env: dict[str, str]) -> None:
    global _WORKER_LOG
    _WORKER_LOG = RawLog(env)


def _worker_render(start: int, stop: int, fmt: str) -> Rendered:
    assert _WORKER_LOG is not None
    return render_batch(_WORKER_LOG.select(start, stop, stop - start + 1), fmt)


def _rendered_batches(
    log: RawLog,
    after: int | None,
    upto: int,
    fmt: str,
    workers: int,
    batch_size: int,
    task_positions: int = TASK_POSITIONS,
) -> Iterator[Rendered]:
    """The exported range rendered in order: in this process, or by `workers` processes
    (each reads its own position ranges; at most two tasks per worker in flight, so
    memory stays bounded whatever the log's length)."""
    if workers <= 1:
        for rows in log.batches(after, upto, batch_size):
            yield render_batch(rows, fmt)
        return
    first = log.select(None if after is None else after + 1, upto, 1)
    if not first:
        return
    starts = iter(range(first[0][0], upto + 1, task_positions))
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_worker_init, initargs=(log.env,)) as pool:
        pending: deque[AsyncResult[Rendered]] = deque()

        def submit() -> None:
            start = next(starts, None)
            if start is not None:
                stop = min(start + task_positions - 1, upto)
                pending.append(pool.apply_async(_worker_render, (start, stop, fmt)))

        for _ in range(2 * workers):
            submit()
        while pending:
            rendered = pending.popleft().get()
            submit()
            if rendered.positions:
                yield rendered


def default_workers(events: int) -> int:
    if events < PARALLEL_MIN_EVENTS:
        return 0
    return max(0, min(4, (os.cpu_count() or 1)))


# --- the export ----------------------------------------------------------------------------------
class _Cursor:
    """The chain over the global log, checked against signed checkpoints as it goes."""

    def __init__(
        self, chain: bytes, index: int, checkpoints: list[Checkpoint], roots: bool
    ) -> None:
        self.chain = chain
        self.index = index  # events of the global log before the next one
        self.pending = iter([c for c in checkpoints if c.tree_size > index])
        self.next = next(self.pending, None)
        self.roots = roots  # the frontier is the global one: compare Merkle roots too
        self.previous = 0

    def reached(self, position: int, frontier: Frontier | None) -> None:
        checkpoint = self.next
        assert checkpoint is not None
        bad = position != checkpoint.last_position or self.chain.hex() != checkpoint.chain_head
        if self.roots and frontier is not None:
            bad = bad or frontier.root().hex() != checkpoint.merkle_root
        if bad:
            raise AuditError(
                f"position {position}: the log does not match the signed checkpoint at tree "
                f"size {checkpoint.tree_size} (an event in positions "
                f"{self.previous + 1}..{position} changed after sealing); refusing to export, "
                "run `ais audit verify --db`"
            )
        self.previous = position
        self.next = next(self.pending, None)

    def advance(
        self, positions: list[int], digests: list[bytes], frontier: Frontier | None
    ) -> list[bytes]:
        """Chain the batch's record hashes; the chain values (hex) for the output. The
        Merkle leaves go in by runs between the checkpoints that fall in the batch."""
        sha = _sha256
        chain = self.chain
        chains: list[bytes] = []
        append = chains.append
        for digest in digests:
            chain = sha(chain + digest).digest()
            append(chain)
        base, done, last = self.index, 0, self.index
        while self.next is not None and last < self.next.tree_size <= base + len(chains):
            last = self.next.tree_size  # (a repeated tree size is never reached, as before)
            j = last - base - 1
            if frontier is not None:
                frontier.append_many(digests[done : j + 1])
                done = j + 1
            self.chain, self.index = chains[j], base + j + 1
            self.reached(positions[j], frontier)
        if frontier is not None:
            frontier.append_many(digests[done:])
        self.chain, self.index = chain, base + len(chains)
        return list(map(_hexlify, chains))


@dataclass
class ExportPlan:
    """Where an export stands before its first row: the rows after `after` up to `upto`
    follow, and the chain cursor holds the link before them (`chain_prev`)."""

    cursor: _Cursor
    after: int | None
    upto: int
    chain_prev: bytes


def plan_export(
    log: RawLog,
    checkpoints: list[Checkpoint],
    public: Ed25519PublicKey | None,
    first: int | None = None,
    last: int | None = None,
    batch_size: int = READ_BATCH,
) -> ExportPlan:
    """Check the signed checkpoints and chain the events before `first` (read from the
    last checkpoint before it, so only that gap costs a pass): everything an export of
    the range needs before it can emit its first row."""
    if first is not None and last is not None and first > last:
        raise AuditError(f"--from {first} is after --to {last}")
    head = log.head()
    upto = head if last is None else min(last, head)
    anchor: Checkpoint | None = None
    if first is not None:
        for c in checkpoints:
            if c.last_position >= first:
                break
            anchor = c
    if anchor is None:
        cursor = _Cursor(ZERO_LINK, 0, checkpoints, roots=first is None)
        after: int | None = None
    else:
        cursor = _Cursor(bytes.fromhex(anchor.chain_head), anchor.tree_size, checkpoints, False)
        after = anchor.last_position
    for c in checkpoints:
        if c.tree_size < cursor.index:
            continue
        if public is None:
            raise AuditError("the log is sealed, but no audit public key is configured to check it")
        if not c.verifies(public):
            raise AuditError(
                f"the checkpoint at tree size {c.tree_size} is not signed by this key; "
                "run `ais audit verify --db`"
            )
    if first is not None:  # events before the range only advance the chain
        for rows in log.batches(after, min(first - 1, upto), batch_size):
            rendered = [(r[0], notification_hash(r)) for r in rows]
            cursor.advance([p for p, _ in rendered], [d for _, d in rendered], None)
            after = rows[-1][0]
    return ExportPlan(cursor, after, upto, cursor.chain)


def chained_batches(
    log: RawLog,
    plan: ExportPlan,
    fmt: str,
    workers: int = 0,
    batch_size: int = READ_BATCH,
    task_positions: int = TASK_POSITIONS,
    frontier: Frontier | None = None,
) -> Iterator[tuple[Rendered, list[bytes]]]:
    """The planned rows rendered, with their chain values, in position order (a mismatch
    with a signed checkpoint raises `AuditError` at that point)."""
    for batch in _rendered_batches(
        log, plan.after, plan.upto, fmt, workers, batch_size, task_positions
    ):
        yield batch, plan.cursor.advance(batch.positions, batch.digests, frontier)


def ndjson_stream(log: RawLog, plan: ExportPlan, batch_size: int = READ_BATCH) -> Iterator[bytes]:
    """The planned range as the bytes of `events.ndjson`, one chunk per read batch."""
    frontier = Frontier() if plan.cursor.roots else None  # O(log n): checks the roots too
    for batch, links in chained_batches(log, plan, "ndjson", 0, batch_size, frontier=frontier):
        yield text_rows(batch, links)


def export_log(
    log: RawLog,
    store: AuditStore | None,
    out: Path,
    *,
    key: Ed25519PrivateKey,
    clock: Callable[[], datetime],
    fmt: str = "ndjson",
    first: int | None = None,
    last: int | None = None,
    progress: Progress | None = None,
    batch_size: int = READ_BATCH,
    workers: int | None = None,
    task_positions: int = TASK_POSITIONS,
) -> dict[str, Any]:
    """Write the export into `out` (absent or empty) and return its manifest.

    `workers`: processes rendering rows (None: by the size of the range and the CPUs;
    0 or 1: this process only). The chain, the Merkle tree, the checkpoint checks and the
    writing stay in this process, in position order.
    """
    if fmt not in FORMATS:
        raise AuditError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    parent = _check_target(out)
    checkpoints = store.list_checkpoints() if store is not None else []
    public = key.public_key()
    plan = plan_export(log, checkpoints, public, first, last, batch_size)
    cursor, upto, chain_prev = plan.cursor, plan.upto, plan.chain_prev
    if workers is None:
        workers = default_workers(upto - (plan.after or 0))
    frontier = Frontier()
    tmp = _temp_dir(parent, out.name or "export")
    try:
        writer = _writer(fmt, tmp / data_file(fmt))
        count = 0
        first_position: int | None = None
        last_position: int | None = None
        try:
            batches = chained_batches(log, plan, fmt, workers, batch_size, task_positions, frontier)
            for batch, links in batches:
                writer.write(batch, links)
                count += len(links)
                if first_position is None:
                    first_position = batch.positions[0]
                last_position = batch.positions[-1]
                if progress is not None:
                    progress(last_position, upto)
        finally:
            writer.close()
        manifest: dict[str, Any] = {
            "format": EXPORT_FORMAT,
            "tool": tool_version(),
            "created_at": clock().isoformat(),
            "file": data_file(fmt),
            "file_format": fmt,
            "columns": list(COLUMNS),
            "record_encoding": RECORD_ENCODING,
            "merkle_tree": "RFC 6962 over the exported record_sha256 values",
            "from": first,
            "to": last,
            "count": count,
            "first_position": first_position,
            "last_position": last_position,
            "first_leaf_index": cursor.index - count,
            "chain_prev": chain_prev.hex(),
            "chain_head": cursor.chain.hex(),
            "merkle_root": frontier.root().hex(),
            "checkpoints": [
                c.to_dict()
                for c in checkpoints
                if first_position is not None
                and last_position is not None
                and first_position <= c.last_position <= last_position
            ],
            "public_key": public_key_pem(public),
            "public_key_sha256": key_fingerprint(public),
        }
        manifest["signature"] = sign_payload(key, manifest)
        with (tmp / MANIFEST).open("x", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
        _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest
