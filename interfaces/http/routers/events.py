"""GET /v1/events (auditor): the notification log, decoded, cursor-paged in log order."""

from __future__ import annotations

import base64
import dataclasses
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from interfaces.http.auth import AUDITOR
from interfaces.http.freshness import fresh, respond
from interfaces.http.models import EventPage
from interfaces.http.pagination import DEFAULT_LIMIT, Cursor, Limit, decode_cursor, encode_cursor
from interfaces.http.routers._common import read_route

router = APIRouter(prefix="/v1/events", tags=["events"], route_class=AUDITOR)


def plain(value: Any) -> Any:
    """The decoded event state as JSON: decimals as exact strings, times in ISO 8601."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):  # never money (the domain refuses floats); keep exact
        return repr(value)
    if isinstance(value, Decimal):
        return format(value, "f") if value.is_finite() else str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return plain(value.value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [plain(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    return str(value)


@router.get("", **read_route(EventPage, 400))
async def list_events(
    request: Request,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Response:
    """Every stored event after the cursor: position, originator, topic, decoded state.

    `position` (and `X-AIS-Position`) is the head of the log when the page was read.
    """
    svc = await fresh(request, None)
    key = decode_cursor("events", cursor, (int,))
    after = key[0] if key else 0

    def read() -> dict[str, Any]:
        events = svc.events.read(after=after, limit=limit + 1)
        head = max(svc.events.head(), events[-1].position if events else 0)
        more = len(events) > limit
        events = events[:limit]
        items = []
        for e in events:
            state = plain(e.state)
            items.append(
                {
                    "position": e.position,
                    "originator_id": e.originator_id,
                    "originator_version": e.originator_version,
                    "topic": e.topic,
                    "timestamp": state.get("timestamp"),
                    "state": state,
                }
            )
        next_cursor = encode_cursor("events", [events[-1].position]) if more else None
        return {"items": items, "next_cursor": next_cursor, "position": head}

    data = await run_in_threadpool(read)
    return respond(EventPage, data)
