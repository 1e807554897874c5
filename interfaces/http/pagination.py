"""Opaque cursors for keyset pagination, and the bounded `limit` every page takes.

A cursor is base64url(JSON) of the resource it belongs to and the sort key of the last
item returned; the next page starts strictly after that key, so pages never repeat or
skip rows that were present when the previous page was read, however many rows are
appended meanwhile. A cursor from another resource, or one that does not decode, is a
400 problem (`urn:ais:problem:invalid-cursor`).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any

from fastapi import Query

from interfaces.http.problems import ProblemError

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
_MAX_CURSOR = 1000

Limit = Annotated[
    int,
    Query(ge=1, le=MAX_LIMIT, description=f"items per page (1-{MAX_LIMIT})"),
]
Cursor = Annotated[
    str | None,
    Query(
        max_length=_MAX_CURSOR,
        description="`next_cursor` of the previous page; omit for the first page",
    ),
]


def _valid(value: Any, kind: type) -> bool:
    if type(value) is not kind:
        return False
    if isinstance(value, int):
        return 0 <= value < 2**63
    return isinstance(value, str) and "\x00" not in value


def encode_cursor(resource: str, key: list[Any]) -> str:
    raw = json.dumps({"r": resource, "k": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _invalid(detail: str) -> ProblemError:
    return ProblemError(400, "invalid-cursor", "Invalid cursor", detail)


def decode_cursor(resource: str, cursor: str | None, types: tuple[type, ...]) -> list[Any] | None:
    """The key after which the page starts (None for the first page)."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError):
        raise _invalid("the cursor does not decode; use next_cursor as returned") from None
    if not isinstance(data, dict) or data.get("r") != resource:
        raise _invalid(f"the cursor is not a {resource} cursor")
    key = data.get("k")
    if (
        not isinstance(key, list)
        or len(key) != len(types)
        or not all(_valid(v, t) for v, t in zip(key, types, strict=True))
    ):
        raise _invalid("the cursor does not decode; use next_cursor as returned")
    return key
