"""The control plane (operator): every change goes through `TradingApp` and the RiskDesk.

Who asked is the token's *name* (never the token): the kill switch records it as `by`
(the `actor` of /v1/risk/decisions); halt and cancel carry it in the command's reason,
which the desk's approval covers and the session/order events store, e.g.
`"maintenance (requested by alice)"`. The answer carries the log position the change is
at or before; pass it as `min_position` to read your own write.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from application.trading import TradingApp
from domain.commands import CancelOrder, HaltSession, StartSession
from domain.values import Mode
from interfaces.http.auth import OPERATOR, caller
from interfaces.http.freshness import services, stamp
from interfaces.http.models import (
    KillSwitchState,
    OrderAccepted,
    ReasonIn,
    SessionAccepted,
    StartSessionIn,
)
from interfaces.http.problems import documented
from interfaces.http.routers._common import POSITION_HEADER_DOC
from interfaces.http.services import Services
from interfaces.http.tokens import ApiToken

router = APIRouter(prefix="/v1", tags=["control"], route_class=OPERATOR)


async def _caller(request: Request) -> ApiToken:
    return caller(request)


Caller = Annotated[ApiToken, Depends(_caller)]
Svc = Annotated[Services, Depends(services)]
RESPONSES = {**documented(400, 401, 403, 409, 422, 503), 200: {"headers": POSITION_HEADER_DOC}}
CREATED = {**documented(400, 401, 403, 409, 422, 503), 201: {"headers": POSITION_HEADER_DOC}}


def with_actor(reason: str, token: ApiToken) -> str:
    return f"{reason.strip()} (requested by {token.name})"


def _stamped(response: Response, result: dict[str, Any]) -> dict[str, Any]:
    stamp(response, result["position"])
    return result


def _head(app: TradingApp) -> int:
    return app.recorder.max_notification_id() or 0


@router.post("/kill-switch", response_model=KillSwitchState, responses=RESPONSES)
async def engage_kill_switch(
    body: ReasonIn, caller: Caller, svc: Svc, response: Response
) -> dict[str, Any]:
    """Engage the kill switch (HALTED) and cancel every open order."""

    def run() -> dict[str, Any]:
        app = svc.trading_app()
        with svc.command_lock:
            before = app.desk().kill_state
            app.engage_kill_switch(body.reason.strip(), by=caller.name)
            after = app.desk().kill_state
            return {
                "kill_state": after,
                "changed": before != after,
                "position": _head(app),
                "requested_by": caller.name,
            }

    return _stamped(response, await run_in_threadpool(run))


@router.post("/kill-switch/reset", response_model=KillSwitchState, responses=RESPONSES)
async def reset_kill_switch(
    body: ReasonIn, caller: Caller, svc: Svc, response: Response
) -> dict[str, Any]:
    """Reset an engaged kill switch (409 when it is not engaged)."""

    def run() -> dict[str, Any]:
        app = svc.trading_app()
        with svc.command_lock:
            app.reset_kill_switch(body.reason.strip(), by=caller.name)
            return {
                "kill_state": app.desk().kill_state,
                "changed": True,
                "position": _head(app),
                "requested_by": caller.name,
            }

    return _stamped(response, await run_in_threadpool(run))


@router.post("/sessions", response_model=SessionAccepted, status_code=201, responses=CREATED)
async def start_session(
    body: StartSessionIn, caller: Caller, svc: Svc, response: Response
) -> dict[str, Any]:
    """Start a trading session (approved by the risk desk) with the current config."""

    def run() -> dict[str, Any]:
        app = svc.trading_app()
        session_id = app.ids()
        svc.commands().execute(
            StartSession(
                session_id=session_id,
                mode=Mode(body.mode),
                starting_capital=Decimal(body.starting_capital),
                config_digest=svc.config_digest,
            )
        )
        return {
            "session_id": str(session_id),
            "status": app.session(session_id).status,
            "position": _head(app),
            "requested_by": caller.name,
        }

    return _stamped(response, await run_in_threadpool(run))


@router.post(
    "/sessions/{session_id}/halt",
    response_model=SessionAccepted,
    responses={**RESPONSES, **documented(404)},
)
async def halt_session(
    session_id: UUID, body: ReasonIn, caller: Caller, svc: Svc, response: Response
) -> dict[str, Any]:
    """Halt an active session (approved even when the kill switch is engaged)."""

    def run() -> dict[str, Any]:
        app = svc.trading_app()
        halt = HaltSession(session_id=session_id, reason=with_actor(body.reason, caller))
        svc.commands().execute(halt)
        return {
            "session_id": str(session_id),
            "status": app.session(session_id).status,
            "position": _head(app),
            "requested_by": caller.name,
        }

    return _stamped(response, await run_in_threadpool(run))


@router.post(
    "/orders/{order_id}/cancel",
    response_model=OrderAccepted,
    responses={**RESPONSES, **documented(404)},
)
async def cancel_order(
    order_id: UUID, body: ReasonIn, caller: Caller, svc: Svc, response: Response
) -> dict[str, Any]:
    """Cancel an order that is still open (409 once it is filled or ended)."""

    def run() -> dict[str, Any]:
        app = svc.trading_app()
        cancel = CancelOrder(order_id=order_id, reason=with_actor(body.reason, caller))
        svc.commands().execute(cancel)
        return {
            "order_id": str(order_id),
            "status": app.order(order_id).status,
            "position": _head(app),
            "requested_by": caller.name,
        }

    return _stamped(response, await run_in_threadpool(run))
