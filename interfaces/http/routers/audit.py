"""/v1/audit/* (auditor): the log as exported, the signed checkpoints, inclusion proofs.

The seal itself is written by `ais audit seal` (or the demo); these routes only read it.
An auditor checks a proof offline with `ais audit check-proof FILE`.

`GET /v1/audit/export` streams the lines `ais audit export --format ndjson` writes to
`events.ndjson`, byte for byte (the same encoder), one read batch at a time, so memory
stays flat however long the log. Like the CLI it checks the signed checkpoints it
passes; a mismatch found after the first bytes are sent aborts the connection (the
chunked body never ends), so a client cannot take a cut-off stream for a whole one.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Annotated, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from adapters.audit_export import ExportPlan, ndjson_stream, plan_export
from adapters.audit_store import AuditError, AuditStore, RawLog, load_public_key, prove
from interfaces.http.auth import AUDITOR
from interfaces.http.freshness import POSITION_HEADER
from interfaces.http.problems import ProblemError, documented
from interfaces.http.services import Services

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


def _log_env(request: Request) -> dict[str, str]:
    env: dict[str, str] | None = request.app.state.services.event_env
    if env is None:
        raise ProblemError(
            503,
            "audit-unavailable",
            "Audit log unavailable",
            "this server has no access to the stored log",
        )
    return env


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
    env = _log_env(request)

    def build() -> dict[str, Any]:
        key_file = svc.audit_public_key
        public = load_public_key(key_file) if key_file and key_file.exists() else None
        log = RawLog(env)
        try:
            return prove(log, store, position, public)
        finally:
            log.close()

    try:
        return await run_in_threadpool(build)
    except AuditError as exc:
        raise ProblemError(404, "not-provable", "No proof", str(exc)) from None


NDJSON = "application/x-ndjson"
CHAIN_PREV_HEADER = "X-AIS-Chain-Prev"
MAX_POSITION = 2**62
STREAM_BATCH = 1000  # events per read and per chunk sent
EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "one event a line, as `events.ndjson` of `ais audit export`: "
        "`position, originator_id, originator_version, topic, timestamp, state, "
        "record_sha256, chain, record`",
        "content": {NDJSON: {"schema": {"type": "string"}}},
        "headers": {
            POSITION_HEADER: {
                "description": "the last position the export covers: `to`, or the head "
                "of the log when it began if that is lower",
                "schema": {"type": "integer", "minimum": 0},
            },
            CHAIN_PREV_HEADER: {
                "description": "the chain link before the first line (64 zero digits at "
                "the start of the log), to check the first line's `chain`",
                "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            },
        },
    },
    **documented(401, 403, 409, 422, 503),
}


def _public_key(svc: Services) -> Ed25519PublicKey:
    """The key the seal's checkpoints must verify with; 503 when the server has none."""
    key_file = svc.audit_public_key
    if key_file is None:
        raise ProblemError(
            503, "audit-unavailable", "Audit key unavailable", "no audit public key configured"
        )
    try:
        return load_public_key(key_file)
    except AuditError as exc:
        raise ProblemError(503, "audit-unavailable", "Audit key unavailable", str(exc)) from None


@router.get("/export", response_class=StreamingResponse, responses=EXPORT_RESPONSES)
async def export(
    request: Request,
    first: Annotated[
        int | None,
        Query(alias="from", ge=1, le=MAX_POSITION, description="first position (default: 1)"),
    ] = None,
    last: Annotated[
        int | None,
        Query(alias="to", ge=1, le=MAX_POSITION, description="last position (default: head)"),
    ] = None,
) -> StreamingResponse:
    """The log from `from` to `to` as streamed NDJSON, each line with its record hash and
    chain link (what `ais audit export --format ndjson --from --to` writes, without the
    signed manifest: run the CLI for an export to verify offline)."""
    if first is not None and last is not None and first > last:
        raise ProblemError(
            422, "bad-range", "Bad position range", f"from {first} is after to {last}"
        )
    env = _log_env(request)
    svc = request.app.state.services
    store = _seal(request)

    def open_export() -> tuple[ExportPlan, bytes, Iterator[bytes]]:
        checkpoints = store.list_checkpoints() if store.exists() else []
        public = _public_key(svc) if checkpoints else None
        log = RawLog(env)
        try:
            plan = plan_export(log, checkpoints, public, first, last)
        except BaseException:
            log.close()
            raise
        chunks = _closing(log, ndjson_stream(log, plan, STREAM_BATCH))
        # The first page before the status line: a mismatch in it is still a 409.
        return plan, next(chunks, b""), chunks

    try:
        plan, head, rest = await run_in_threadpool(open_export)
    except AuditError as exc:
        raise ProblemError(
            409, "log-not-as-sealed", "Log does not match its seal", str(exc)
        ) from None
    return StreamingResponse(
        itertools.chain((head,), rest),
        media_type=NDJSON,
        headers={POSITION_HEADER: str(plan.upto), CHAIN_PREV_HEADER: plan.chain_prev.hex()},
    )


def _closing(log: RawLog, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """`chunks`, then the log closed (also when the client goes away mid-stream)."""
    try:
        yield from chunks
    finally:
        log.close()
