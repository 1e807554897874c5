"""Audit seal, pure: record hashes, the hash chain, the RFC 6962 Merkle tree, checkpoints.

No I/O here: the sealer, the exporter and the verifiers (adapters/) all call these
functions, so the database side and the offline side cannot disagree on a definition.

Definitions (the export format in DESIGN.md refers to these):

- **record**: one stored event row. Its bytes for hashing are
  ``f"{position}\\n{originator_id}\\n{originator_version}\\n{topic}\\n".encode() + state``
  where ``state`` is the exact byte string the event store holds (the eventsourcing
  transcoder's JSON) and ``originator_id`` is the canonical hyphenated UUID. The first
  four fields never contain a newline (``record_bytes`` refuses a topic that does), so the
  framing is unambiguous, and the hash binds the position, the aggregate, its version and
  the event type as well as the payload: none of them can be edited unseen.
- **record_sha256** = SHA-256(record bytes).
- **chain**: ``link_0`` = 32 zero bytes, ``link_n = SHA-256(link_{n-1} || record_sha256_n)``
  over the log in position order (positions may have gaps on PostgreSQL, the chain does
  not care: it runs over the events that exist).
- **Merkle tree**: RFC 6962 over the record hashes (each leaf's data is the 32-byte
  record hash): leaf hash ``SHA-256(0x00 || data)``, node hash ``SHA-256(0x01 || l || r)``,
  a tree of n > 1 leaves splits at the largest power of two below n. The empty tree's
  root is SHA-256 of the empty string.
- **checkpoint**: Ed25519 signature over the canonical JSON (sorted keys, no spaces) of
  ``{format, tree_size, last_position, chain_head, merkle_root, created_at}``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from domain.canonical import canonical_bytes

ZERO_LINK = bytes(32)
EMPTY_ROOT = hashlib.sha256(b"").digest()
CHECKPOINT_FORMAT = "ais-audit-checkpoint/1"
RECORD_ENCODING = "sha256(position LF originator_id LF originator_version LF topic LF state-bytes)"

_sha256 = hashlib.sha256
_digest = type(_sha256()).digest


class AuditFormatError(ValueError):
    """Input that cannot be part of a sealed record or a proof."""


# --- records and the chain -------------------------------------------------------------------
def record_bytes(
    position: int, originator_id: str, originator_version: int, topic: str, state: bytes
) -> bytes:
    """The bytes a record hash covers (see the module docstring)."""
    if "\n" in topic or "\n" in originator_id:
        raise AuditFormatError(f"position {position}: a newline in the topic or originator id")
    head = f"{position}\n{originator_id}\n{originator_version}\n{topic}\n"
    return head.encode("utf-8") + state


def record_hash(
    position: int, originator_id: str, originator_version: int, topic: str, state: bytes
) -> bytes:
    return _sha256(record_bytes(position, originator_id, originator_version, topic, state)).digest()


def chain_step(link: bytes, record_sha256: bytes) -> bytes:
    """link_n = SHA-256(link_{n-1} || record_sha256_n)."""
    return _sha256(link + record_sha256).digest()


# --- RFC 6962 Merkle tree ------------------------------------------------------------------------
def leaf_hash(data: bytes) -> bytes:
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def merkle_root_of(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) straight from the RFC's recursive definition (reference, small inputs)."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaf_hash(leaves[0])
    k = _split(len(leaves))
    return node_hash(merkle_root_of(leaves[:k]), merkle_root_of(leaves[k:]))


class Frontier:
    """The compact range of an append-only RFC 6962 tree: one root per set bit of its size.

    ``roots`` are the perfect subtrees covering leaves 0..size-1, largest (leftmost) first.
    Appending costs O(1) amortised (at most log n node hashes); the tree root is the right
    fold of the roots, which is exactly RFC 6962's split at the largest power of two.
    """

    __slots__ = ("roots", "size")

    def __init__(self, size: int = 0, roots: Sequence[bytes] = ()) -> None:
        if len(roots) != bin(size).count("1"):
            raise AuditFormatError(
                f"a frontier of size {size} has {bin(size).count('1')} roots, not {len(roots)}"
            )
        self.size = size
        self.roots = list(roots)

    def append(self, data: bytes) -> None:
        """Add one leaf whose data is ``data`` (a record hash)."""
        self.append_leaf_hash(_sha256(b"\x00" + data).digest())

    def append_leaf_hash(self, h: bytes) -> None:
        n = self.size
        roots = self.roots
        while n & 1:
            h = _sha256(b"\x01" + roots.pop() + h).digest()
            n >>= 1
        roots.append(h)
        self.size += 1

    def append_many(self, leaves: Sequence[bytes]) -> None:
        """Add many leaves (record hashes) at once: the same tree as `append` one by one,
        hashed as aligned perfect subtrees a level at a time, so the per-leaf work runs in
        C (`map` over hashlib) and only O(log n) subtree appends run in Python."""
        if not leaves:
            return
        level_hashes = list(map(_digest, map(_sha256, map(b"\x00".__add__, leaves))))
        i, n = 0, len(level_hashes)
        while i < n:
            height = (n - i).bit_length() - 1
            if self.size:
                height = min(height, (self.size & -self.size).bit_length() - 1)
            level = level_hashes[i : i + (1 << height)]
            while len(level) > 1:
                pairs = map(bytes.__add__, level[0::2], level[1::2])
                level = list(map(_digest, map(_sha256, map(b"\x01".__add__, pairs))))
            self.append_subtree(level[0], height)
            i += 1 << height

    def append_subtree(self, h: bytes, height: int) -> None:
        """Add a perfect subtree of 2**height leaves whose root is ``h``; the tree's size
        must be a multiple of its size (the subtree sits at an aligned position)."""
        if self.size % (1 << height):
            raise AuditFormatError(
                f"a subtree of {1 << height} leaves cannot follow {self.size} leaves"
            )
        n = self.size >> height
        roots = self.roots
        while n & 1:
            h = _sha256(b"\x01" + roots.pop() + h).digest()
            n >>= 1
        roots.append(h)
        self.size += 1 << height

    def extend(self, other: Frontier) -> None:
        """Append the leaves ``other`` covers (its roots, largest first), aligned here."""
        heights = [i for i in range(other.size.bit_length() - 1, -1, -1) if other.size >> i & 1]
        for h, height in zip(other.roots, heights, strict=True):
            self.append_subtree(h, height)

    def root(self) -> bytes:
        if not self.roots:
            return EMPTY_ROOT
        h = self.roots[-1]
        for left in reversed(self.roots[:-1]):
            h = node_hash(left, h)
        return h

    def copy(self) -> Frontier:
        return Frontier(self.size, self.roots)

    def to_json(self) -> str:
        return json.dumps([r.hex() for r in self.roots])

    @classmethod
    def from_json(cls, size: int, text: str) -> Frontier:
        try:
            roots = [bytes.fromhex(r) for r in json.loads(text)]
        except (ValueError, TypeError) as exc:
            raise AuditFormatError(f"malformed frontier: {exc}") from None
        return cls(size, roots)


def merkle_root(leaves: Iterable[bytes]) -> bytes:
    """MTH over any iterable of leaf data, in O(log n) memory."""
    frontier = Frontier()
    for data in leaves:
        frontier.append(data)
    return frontier.root()


def proof_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges [a, b) whose subtree roots form PATH(index, D[size]), in path order.

    RFC 6962 2.1.1: for k the largest power of two below n, a leaf left of k gets the
    root of D[k:n] appended to its path in D[0:k], a leaf right of k the root of D[0:k].
    """
    if not 0 <= index < size:
        raise AuditFormatError(f"leaf index {index} is outside a tree of size {size}")
    path: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index - lo < k:
            path.append((lo + k, hi))
            hi = lo + k
        else:
            path.append((lo, lo + k))
            lo = lo + k
    path.reverse()  # the recursion appends from the leaf upwards
    return path


def inclusion_proof(leaves: Iterable[bytes], index: int, size: int) -> list[bytes]:
    """PATH(index, D[size]) from the first ``size`` leaf data, streamed in O(log n) memory.

    The path's ranges and the proven leaf partition [0, size) into consecutive intervals,
    so one pass in leaf order fills each range's subtree root in turn.
    """
    ranges = proof_ranges(index, size)
    by_start = sorted(range(len(ranges)), key=lambda j: ranges[j][0])
    roots: list[bytes] = [b""] * len(ranges)
    current = 0
    frontier = Frontier()
    seen = 0
    for i, data in enumerate(leaves):
        if i >= size:
            break
        seen = i + 1
        if i == index:
            continue
        j = by_start[current]
        frontier.append(data)
        if i + 1 == ranges[j][1]:
            roots[j] = frontier.root()
            frontier = Frontier()
            current += 1
    if seen < size:
        raise AuditFormatError(f"only {seen} of {size} leaves to prove leaf {index} from")
    return roots


def verify_inclusion(
    data: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 2.1.3.2: does ``proof`` place leaf ``data`` at ``index`` under ``root``?"""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = leaf_hash(data)
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


# --- signatures ----------------------------------------------------------------------------------
def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def key_fingerprint(key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw 32-byte public key, hex: what a person compares."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def load_public_key_pem(pem: str | bytes) -> Ed25519PublicKey:
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnicodeEncodeError):
        raise AuditFormatError("not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise AuditFormatError("not an Ed25519 public key")
    return key


def sign_payload(key: Ed25519PrivateKey, payload: dict[str, Any]) -> str:
    """Base64 Ed25519 signature over the payload's canonical JSON."""
    return base64.b64encode(key.sign(canonical_bytes(payload))).decode("ascii")


def signature_valid(key: Ed25519PublicKey, payload: dict[str, Any], signature: object) -> bool:
    if not isinstance(signature, str):
        return False
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, canonical_bytes(payload))
    except (InvalidSignature, binascii.Error, ValueError, TypeError):
        return False
    return True


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement: the first ``tree_size`` events, up to ``last_position``."""

    tree_size: int
    last_position: int
    chain_head: str
    merkle_root: str
    created_at: str
    signature: str = ""

    def payload(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "tree_size": self.tree_size,
            "last_position": self.last_position,
            "chain_head": self.chain_head,
            "merkle_root": self.merkle_root,
            "created_at": self.created_at,
        }

    def signed(self, key: Ed25519PrivateKey) -> Checkpoint:
        return Checkpoint(**{**self.__dict__, "signature": sign_payload(key, self.payload())})

    def verifies(self, key: Ed25519PublicKey) -> bool:
        return signature_valid(key, self.payload(), self.signature)

    def to_dict(self) -> dict[str, Any]:
        return {**self.payload(), "signature": self.signature}

    @classmethod
    def from_dict(cls, data: object) -> Checkpoint:
        if not isinstance(data, dict):
            raise AuditFormatError("a checkpoint is not an object")
        try:
            checkpoint = cls(
                tree_size=data["tree_size"],
                last_position=data["last_position"],
                chain_head=data["chain_head"],
                merkle_root=data["merkle_root"],
                created_at=data["created_at"],
                signature=data["signature"],
            )
        except KeyError as exc:
            raise AuditFormatError(f"a checkpoint has no {exc.args[0]!r}") from None
        if data.get("format", CHECKPOINT_FORMAT) != CHECKPOINT_FORMAT:
            raise AuditFormatError(f"unknown checkpoint format {data.get('format')!r}")
        ints = (checkpoint.tree_size, checkpoint.last_position)
        texts = (checkpoint.chain_head, checkpoint.merkle_root, checkpoint.created_at)
        if not all(type(v) is int for v in ints) or not all(isinstance(v, str) for v in texts):
            raise AuditFormatError("a checkpoint field has the wrong type")
        return checkpoint


# --- the human view of a record ------------------------------------------------------------------
_TAG = b'{"_type_":"'
_DATA = b'","_data_":"'
_PLAIN_TYPES = frozenset({b"decimal_str", b"datetime_iso", b"uuid_hex"})
_HEX = frozenset(b"0123456789abcdef")


def render_state(state: bytes) -> bytes:
    """The stored JSON with the event store's type tags replaced by their plain strings.

    The eventsourcing transcoder writes a Decimal as ``{"_type_":"decimal_str","_data_":
    "1.5"}``; the export shows ``"1.5"`` (datetimes as their ISO text, UUIDs hyphenated).
    Anything else is left exactly as stored. A tag can only start an object here: inside
    a JSON string every quote is escaped, so ``{"_type_":"`` cannot occur there.
    """
    if _TAG not in state:
        return state
    parts = state.split(_TAG)
    out = [parts[0]]
    for part in parts[1:]:
        i = part.find(_DATA)
        if i > 0 and part[:i] in _PLAIN_TYPES:
            start = i + 12
            end = part.find(b'"', start)
            if end > 0 and part[end + 1 : end + 2] == b"}":
                data = part[start:end]
                if b"\\" not in data:
                    if part[:i] != b"uuid_hex":
                        out.append(b'"' + data + b'"' + part[end + 2 :])
                        continue
                    if len(data) == 32 and _HEX.issuperset(data):
                        out.append(
                            b'"%s-%s-%s-%s-%s"'
                            % (data[:8], data[8:12], data[12:16], data[16:20], data[20:])
                            + part[end + 2 :]
                        )
                        continue
        out.append(_TAG + part)
    return b"".join(out)


# One pass over a whole batch (re, in C) instead of `render_state` per record. The UUID
# tags go first, then the others: matches never overlap, and a replacement can only form
# a new tag when a tag's data is itself a tag (`"_data_":{`), which takes the slow path.
_UUID_TAG = re.compile(
    rb'\{"_type_":"uuid_hex","_data_":("[0-9a-f]{8})([0-9a-f]{4})([0-9a-f]{4})([0-9a-f]{4})'
    rb'([0-9a-f]{12}")\}'
)
_PLAIN_TAG = re.compile(rb'\{"_type_":"(?:decimal_str|datetime_iso)","_data_":("[^"\\\n]*")\}')
_NESTED_TAG = b'"_data_":{'


def render_states(records: Sequence[bytes]) -> list[bytes] | None:
    """`render_state` of every record, byte for byte, done on the batch joined by newlines;
    None when a record holds a newline or a nested tag (the caller renders one by one)."""
    if not records:
        return []
    rendered = render_joined(records)
    return None if rendered is None else rendered.split(b"\n")


def render_joined(records: Sequence[bytes]) -> bytes | None:
    """`render_states` joined by newlines (a non-empty batch), before the split."""
    blob = b"\n".join(records)
    if blob.count(b"\n") != len(records) - 1:
        return None
    if _TAG in blob:
        if _NESTED_TAG in blob:
            return None
        parts = _UUID_TAG.split(blob)
        if len(parts) > 1:  # text, then per match: 5 groups and the text after it
            out = [b"-"] * (1 + 10 * (len(parts) // 6))
            out[0::10] = parts[0::6]
            for k in range(5):
                out[1 + 2 * k :: 10] = parts[1 + k :: 6]
            blob = b"".join(out)
        blob = b"".join(_PLAIN_TAG.split(blob))
    return blob


def event_timestamp_bytes(rendered: bytes) -> bytes | None:
    """`event_timestamp` as the UTF-8 bytes of its JSON string content (no escapes)."""
    if rendered.startswith(b'{"timestamp":"'):
        end = rendered.find(b'"', 14)
        if end > 0 and rendered[14:end].isascii() and b"\\" not in rendered[14:end]:
            return rendered[14:end]
    found = event_timestamp(rendered)
    return None if found is None else found.encode("utf-8")


def event_timestamp(rendered: bytes) -> str | None:
    """The event's own ``timestamp`` (ISO text) from its rendered state, if it has one."""
    if rendered.startswith(b'{"timestamp":"'):
        end = rendered.find(b'"', 14)
        if end > 0 and b"\\" not in rendered[14:end]:
            return rendered[14:end].decode("utf-8", "replace")
    try:
        value = json.loads(rendered)
    except ValueError:
        return None
    found = value.get("timestamp") if isinstance(value, dict) else None
    return found if isinstance(found, str) else None


def state_text(rendered: bytes) -> str | None:
    """The rendered state as text, or None when the stored bytes are not UTF-8."""
    if rendered.isascii():
        return rendered.decode("ascii")
    try:
        return rendered.decode("utf-8")
    except UnicodeDecodeError:
        return None
