"""GET /v1/reports/lots (viewer): realized lots as a CSV download, in a tracker's layout.

The same export as `ais report lots` (`interfaces.lot_source`, `projections.lot_formats`):
FIFO lots from the position fills in the log, disposed of in `year` (every year if
omitted), as `generic`, `koinly` or `cointracking` CSV.
"""

from __future__ import annotations

import io
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from interfaces.http.auth import VIEWER
from interfaces.http.problems import documented
from interfaces.http.services import Services
from interfaces.lot_source import pair_resolver, realized_lots
from projections.lot_formats import write_lots

router = APIRouter(prefix="/v1/reports", tags=["reports"], route_class=VIEWER)
Layout = Literal["generic", "koinly", "cointracking"]


CSV = "text/csv; charset=utf-8"


@router.get(
    "/lots",
    response_class=Response,  # not JSON; the problems stay application/problem+json
    responses={
        **documented(401, 403, 422, 503),
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
    },
)
async def lots_csv(
    request: Request,
    year: Annotated[int | None, Query(ge=1970, le=9999, description="disposal year, UTC")] = None,
    layout: Annotated[Layout, Query(alias="format", description="CSV layout")] = "generic",
) -> Response:
    """Realized gains per lot (FIFO) as CSV; `Content-Disposition` names the file."""
    svc: Services = request.app.state.services

    def build() -> str:
        out = io.StringIO()
        write_lots(realized_lots(svc.events, year), out, layout, pair_resolver(svc.config_dir))
        return out.getvalue()

    name = f"ais-lots-{year or 'all'}-{layout}.csv"
    return Response(
        await run_in_threadpool(build),
        media_type=CSV,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
