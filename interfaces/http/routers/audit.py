"""/v1/audit/* (auditor): the signed checkpoints and inclusion proofs against them.

The seal itself is written by `ais audit seal` (or the demo); these routes only read it.
An auditor checks a proof offline with `ais audit check-proof FILE`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from adapters.audit_store import AuditError, AuditStore, RawLog, load_public_key, prove
from interfaces.http.auth import AUDITOR
from interfaces.http.problems import ProblemError, documented

router = APIRouter(prefix="/v1/audit", tags=["audit"], route_class=AUDITOR)


class CheckpointOut(BaseModel):
    format: str
    tree_size: int
    last_position: int
    chain_head: str
    merkle_root: str
    created_at: str
    signature: str


class Checkpoints(BaseModel):
    items: list[CheckpointOut]


def _seal(request: Request) -> AuditStore:
    svc = request.app.state.services
    # Shares the read store's engine; never closed here (the services own the engine).
    return AuditStore(svc.store.engine, svc.store.schema)


@router.get("/checkpoints", response_model=Checkpoints, responses=documented(401, 403, 422, 503))
async def checkpoints(request: Request) -> Checkpoints:
    """Every signed checkpoint, oldest first (empty until the log has been sealed)."""
    store = _seal(request)

    def read() -> list[dict[str, Any]]:
        return [c.to_dict() for c in store.list_checkpoints()] if store.exists() else []

    return Checkpoints(items=[CheckpointOut(**c) for c in await run_in_threadpool(read)])


@router.get("/proof/{position}", responses=documented(401, 403, 404, 422, 503))
async def proof(request: Request, position: int = Path(ge=1, le=2**62)) -> dict[str, Any]:
    """An RFC 6962 inclusion proof of one event against the latest signed checkpoint."""
    svc = request.app.state.services
    store = _seal(request)
    if not await run_in_threadpool(store.exists):
        raise ProblemError(404, "not-sealed", "Not sealed", "the log has not been sealed yet")
    if svc.event_env is None:
        raise ProblemError(
            503,
            "audit-unavailable",
            "Audit log unavailable",
            "this server has no access to the stored log",
        )

    def build() -> dict[str, Any]:
        key_file = svc.audit_public_key
        public = load_public_key(key_file) if key_file and key_file.exists() else None
        log = RawLog(svc.event_env)
        try:
            return prove(log, store, position, public)
        finally:
            log.close()

    try:
        return await run_in_threadpool(build)
    except AuditError as exc:
        raise ProblemError(404, "not-provable", "No proof", str(exc)) from None
