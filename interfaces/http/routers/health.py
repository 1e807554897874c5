"""Open probes: /healthz (the process answers) and /readyz (the database answers)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from interfaces.http.freshness import services
from interfaces.http.models import Health, Readiness
from interfaces.http.problems import ProblemError, documented
from interfaces.http.services import Services

router = APIRouter(tags=["health"])
log = logging.getLogger("ais.http")


@router.get("/healthz", response_model=Health)
async def healthz() -> dict[str, Any]:
    """Liveness: the server is running (no database access)."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Readiness, responses=documented(503))
async def readyz(svc: Annotated[Services, Depends(services)]) -> dict[str, Any]:
    """Readiness: the read store and the event store answer, the projector is running."""

    def check() -> dict[str, Any]:
        svc.reads.ping()
        head = svc.events.head()
        positions = svc.reads.positions_by_projection()
        return {
            "status": "ready",
            "position": min(positions.values(), default=head),
            "head": head,
            "lag": {name: max(0, head - at) for name, at in positions.items()},
        }

    try:
        result = await run_in_threadpool(check)
    except Exception as exc:
        log.warning("readiness check failed: %s", exc, exc_info=exc)
        raise ProblemError(
            503,
            "not-ready",
            "Not ready",
            f"database check failed: {type(exc).__name__}",
            headers={"Retry-After": "1"},
        ) from None
    projector = svc.projector
    if projector is not None and (not projector.alive or projector.error):
        raise ProblemError(
            503,
            "not-ready",
            "Not ready",
            f"projector: {projector.error or 'not running'}",
            headers={"Retry-After": "1"},
        )
    return result
