"""GET /v1/sessions: trading sessions (mode, capital, status), paged."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response

from interfaces.http.auth import VIEWER
from interfaces.http.freshness import fresh, respond
from interfaces.http.models import SessionPage
from interfaces.http.pagination import DEFAULT_LIMIT, Cursor, Limit
from interfaces.http.routers._common import read_route

router = APIRouter(prefix="/v1/sessions", tags=["sessions"], route_class=VIEWER)


@router.get(
    "",
    **read_route(SessionPage, 400),
)
async def list_sessions(
    request: Request,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
    status: Literal["ACTIVE", "HALTED", "ENDED"] | None = None,
) -> Response:
    """Sessions in the order they started (oldest first)."""
    svc = await fresh(request, "sessions")
    data = await svc.reads.call(svc.reads.sessions, cursor, limit, status=status)
    return respond(SessionPage, data)
