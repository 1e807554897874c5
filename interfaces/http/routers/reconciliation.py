"""GET /v1/reconciliation: exchange snapshots against the projected book.

Each snapshot's verdict (MATCHED | DRIFT | BREAK) with its per-item differences, paged by
venue and snapshot. Without a reconciliation read model in `projections.registry` this
is an empty page that reflects the head of the log.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from interfaces.http.auth import VIEWER
from interfaces.http.freshness import fresh, respond
from interfaces.http.models import ReconciliationPage
from interfaces.http.pagination import DEFAULT_LIMIT, Cursor, Limit
from interfaces.http.routers._common import read_route

router = APIRouter(prefix="/v1/reconciliation", tags=["reconciliation"], route_class=VIEWER)


@router.get("", **read_route(ReconciliationPage, 400))
async def list_reconciliations(
    request: Request,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
    status: Literal["MATCHED", "DRIFT", "BREAK"] | None = None,
) -> Response:
    """Reconciliation results (MATCHED | DRIFT | BREAK) per exchange snapshot."""
    svc = await fresh(request, "reconciliation")
    if "reconciliation" in svc.reads.tables:
        data = await svc.reads.call(svc.reads.reconciliation, cursor, limit, 0, status=status)
    else:  # no read model yet: an empty page at the head of the log
        head = await run_in_threadpool(svc.events.head)
        data = svc.reads.reconciliation(cursor, limit, head, status=status)
    return respond(ReconciliationPage, data)
