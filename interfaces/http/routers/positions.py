"""GET /v1/positions: quantity, average entry, realized P&L and fees per instrument."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from interfaces.http.auth import VIEWER
from interfaces.http.freshness import fresh, respond
from interfaces.http.models import Positions
from interfaces.http.routers._common import read_route

router = APIRouter(prefix="/v1/positions", tags=["positions"], route_class=VIEWER)


@router.get("", **read_route(Positions))
async def get_positions(
    request: Request,
) -> Response:
    """Every position of the account (one per instrument), by instrument."""
    svc = await fresh(request, "positions")
    data = await svc.reads.call(svc.reads.positions)
    return respond(Positions, data)
