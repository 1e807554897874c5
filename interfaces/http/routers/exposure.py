"""GET /v1/exposure: long, short, gross, net, leverage and weight per instrument."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from interfaces.http.auth import VIEWER
from interfaces.http.freshness import fresh, respond
from interfaces.http.models import Exposure
from interfaces.http.routers._common import read_route

router = APIRouter(prefix="/v1/exposure", tags=["exposure"], route_class=VIEWER)


@router.get("", **read_route(Exposure))
async def get_exposure(
    request: Request,
) -> Response:
    """Totals (leverage = gross / NAV) and each instrument's notional and weight."""
    svc = await fresh(request, "exposure")
    data = await svc.reads.call(svc.reads.exposure)
    return respond(Exposure, data)
