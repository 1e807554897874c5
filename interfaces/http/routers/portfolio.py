"""GET /v1/portfolio (NAV, high-water mark, drawdown, daily P&L) and its history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from interfaces.http.auth import VIEWER
from interfaces.http.freshness import fresh, respond
from interfaces.http.models import NavHistoryPage, NavSample, Portfolio
from interfaces.http.pagination import DEFAULT_LIMIT, Cursor, Limit
from interfaces.http.routers._common import read_route

router = APIRouter(prefix="/v1/portfolio", tags=["portfolio"], route_class=VIEWER)


@router.get("", **read_route(Portfolio))
async def get_portfolio(
    request: Request,
) -> Response:
    """NAV = cash + Σ quantity × mark, high-water mark, drawdown, today's P&L (UTC)."""
    svc = await fresh(request, "portfolio")
    data = await svc.reads.call(svc.reads.portfolio)
    return respond(Portfolio, data)


@router.get("/history", **read_route(NavHistoryPage, 400))
async def get_history(
    request: Request,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Response:
    """NAV, high-water mark and drawdown at every mark, oldest first."""
    svc = await fresh(request, "portfolio")
    data = await svc.reads.call(svc.reads.nav_history, cursor, limit)
    return respond(NavHistoryPage, data)


@router.get("/history/sample", **read_route(NavSample))
async def get_history_sample(
    request: Request,
    points: Annotated[int, Query(ge=2, le=2000, description="most marks to return")] = 300,
) -> Response:
    """At most `points` marks spread evenly over the whole history (for charts)."""
    svc = await fresh(request, "portfolio")
    data = await svc.reads.call(svc.reads.nav_sample, points)
    return respond(NavSample, data)
