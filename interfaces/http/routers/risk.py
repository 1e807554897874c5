"""GET /v1/risk/decisions: approvals, rejections (guard, observed, limit), kill switch."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from interfaces.http.auth import VIEWER
from interfaces.http.freshness import fresh, respond
from interfaces.http.models import Decision, KillSwitchView, RiskDecisionPage
from interfaces.http.pagination import DEFAULT_LIMIT, Cursor, Limit
from interfaces.http.routers._common import read_route

router = APIRouter(prefix="/v1/risk", tags=["risk"], route_class=VIEWER)
Guard = Annotated[
    str | None, Query(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="e.g. max_order_notional")
]


@router.get("/decisions", **read_route(RiskDecisionPage, 400))
async def list_decisions(
    request: Request,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
    decision: Decision | None = None,
    guard: Guard = None,
) -> Response:
    """Every decision of the risk desk in log order; `actor` names who changed the switch."""
    svc = await fresh(request, "risk_decisions")
    data = await svc.reads.call(
        svc.reads.risk_decisions, cursor, limit, decision=decision, guard=guard
    )
    return respond(RiskDecisionPage, data)


@router.get("/kill-switch", **read_route(KillSwitchView))
async def get_kill_switch(request: Request) -> Response:
    """The kill-switch state (ACTIVE, REDUCING, HALTED) and its last change."""
    svc = await fresh(request, "risk_decisions")
    return respond(KillSwitchView, await svc.reads.call(svc.reads.kill_switch))
