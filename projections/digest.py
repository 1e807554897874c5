"""Digests of read models: SHA-256 over a canonical dump, per projection and combined."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import zip_longest
from typing import Protocol

import orjson

from domain.canonical import canonical_bytes
from projections.spec import Projection, Row


class Dumpable(Protocol):
    def dump(self, projection: Projection) -> Iterator[tuple[str, Row]]: ...


def row_line(table: str, row: Row) -> bytes:
    """Rows hold only str, int and None, so plain sorted-key JSON is already canonical.

    orjson writes the same bytes as `json.dumps(sort_keys=True, separators=(",", ":"),
    ensure_ascii=False)` (tests/test_projections.py checks it) at a fraction of the cost;
    what it refuses (ints beyond 64 bits, lone surrogates) takes the stdlib path.
    """
    try:
        return orjson.dumps([table, row], option=orjson.OPT_SORT_KEYS)
    except TypeError:
        text = json.dumps([table, row], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return text.encode("utf-8")


def digest_rows(rows: Iterable[tuple[str, Row]]) -> str:
    h = hashlib.sha256()
    for table, row in rows:
        h.update(row_line(table, row))
        h.update(b"\n")
    return h.hexdigest()


def digests(store: Dumpable, projections: Iterable[Projection]) -> dict[str, str]:
    return {p.name: digest_rows(store.dump(p)) for p in projections}


def combined(per_projection: dict[str, str]) -> str:
    return hashlib.sha256(canonical_bytes(sorted(per_projection.items()))).hexdigest()


@dataclass(frozen=True)
class Difference:
    table: str
    key: str
    live: Row | None
    rebuilt: Row | None

    def describe(self) -> str:
        if self.live is None:
            return f"table {self.table}: row {self.key} missing from the live read model"
        if self.rebuilt is None:
            return f"table {self.table}: row {self.key} exists only in the live read model"
        columns = [c for c in self.live if self.live.get(c) != self.rebuilt.get(c)]
        return (
            f"table {self.table}: row {self.key} differs in {', '.join(columns)} "
            f"(live {[self.live[c] for c in columns]}, "
            f"rebuilt {[self.rebuilt[c] for c in columns]})"
        )


def first_difference(
    projection: Projection, live: Iterator[tuple[str, Row]], rebuilt: Iterator[tuple[str, Row]]
) -> Difference | None:
    """Walk both ordered dumps in step; the first pair that differs names table and row."""
    keys = {spec.name: spec.key for spec in projection.tables}

    def position(pair: tuple[str, Row]) -> tuple[str, tuple[object, ...]]:
        return pair[0], tuple(pair[1][c] for c in keys[pair[0]])

    for left, right in zip_longest(live, rebuilt):
        if left == right:
            continue
        first = min((p for p in (left, right) if p is not None), key=position)
        table, row = first
        at = position(first)
        return Difference(
            table=table,
            key=", ".join(f"{c}={row[c]}" for c in keys[table]),
            live=left[1] if left is not None and position(left) == at else None,
            rebuilt=right[1] if right is not None and position(right) == at else None,
        )
    return None
