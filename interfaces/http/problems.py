"""RFC 9457 problem details for every error the API returns, and nothing leaked.

`type` is `about:blank` for plain HTTP errors (unknown path, wrong method), whose `title`
is then the status phrase; AIS-specific problems use `urn:ais:problem:<slug>` URIs.
Unexpected exceptions become a 500 with a fixed text: the traceback goes to the server
log (uvicorn's), never to the client.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from eventsourcing.persistence import PersistenceError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError
from starlette.exceptions import HTTPException as StarletteHTTPException

from application.errors import ConcurrencyConflict, NotFound, RiskRejected
from domain.approval import KeyRingError
from domain.errors import (
    ApprovalError,
    DomainError,
    DuplicateFill,
    IllegalTransition,
    InvalidCommand,
)

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("ais.http")


def problem_type(slug: str) -> str:
    return f"urn:ais:problem:{slug}"


class Problem(BaseModel):
    """RFC 9457 problem details; some problems add members (see each operation)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(default="about:blank", examples=["urn:ais:problem:risk-rejected"])
    title: str
    status: int = Field(ge=400, le=599)
    detail: str | None = None
    instance: str | None = None


class StoreUnavailable(Exception):
    """The read store failed under a read (connection lost, table missing, locked): 503."""


class ProblemError(Exception):
    """Raised anywhere in a request to answer with this problem."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.type = problem_type(slug)
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions


def problem_body(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    type_: str = "about:blank",
    instance: str | None = None,
    **extensions: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": type_, "title": title, "status": status}
    if detail is not None:
        body["detail"] = detail
    if instance is not None:
        body["instance"] = instance
    body.update(extensions)
    return body


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    type_: str = "about:blank",
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, title, detail, type_=type_, instance=instance, **extensions),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_JSON,
    )


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _instance(request: Request) -> str:
    return request.url.path


# --- exception handlers ----------------------------------------------------------------------
async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    phrase = _phrase(exc.status_code)
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else None
    return problem_response(
        exc.status_code,
        phrase,
        detail,
        instance=_instance(request),
        headers=dict(exc.headers or {}),
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "loc": [str(part) for part in error.get("loc", ())],
            "msg": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        for error in exc.errors()
    ]
    first = errors[0] if errors else None
    detail = (
        f"{'.'.join(first['loc'])}: {first['msg']}" if first else "the request is not valid"
    )
    return problem_response(
        422,
        "Request validation failed",
        detail,
        type_=problem_type("validation-error"),
        instance=_instance(request),
        errors=errors,
    )


async def _problem_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(
        exc.status,
        exc.title,
        exc.detail,
        type_=exc.type,
        instance=_instance(request),
        headers=exc.headers,
        **exc.extensions,
    )


def domain_problem(exc: Exception) -> ProblemError:
    """How a refusal of the write side maps onto HTTP."""
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, RiskRejected):
        r = exc.rejection
        return ProblemError(
            409,
            "risk-rejected",
            "Rejected by the risk desk",
            detail,
            guard=r.guard,
            observed=r.observed,
            limit=r.limit,
            reason=r.reason,
        )
    if isinstance(exc, NotFound):
        return ProblemError(404, "not-found", "Not found", detail)
    if isinstance(exc, IllegalTransition):
        return ProblemError(409, "illegal-transition", "Illegal state transition", detail)
    if isinstance(exc, ConcurrencyConflict | DuplicateFill):
        return ProblemError(409, "conflict", "Conflicting write", detail)
    if isinstance(exc, ApprovalError | KeyRingError):
        return ProblemError(
            503,
            "approval-unavailable",
            "Approvals unavailable",
            detail,
            headers={"Retry-After": "30"},
        )
    if isinstance(exc, InvalidCommand):
        return ProblemError(422, "invalid-command", "Invalid command", detail)
    return ProblemError(422, "refused", "Refused by the domain", detail)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    return await _problem_error(request, domain_problem(exc))


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.error("store unavailable on %s: %s", request.url.path, exc, exc_info=exc)
    return problem_response(
        503,
        "Store unavailable",
        "the database cannot serve this request now",
        type_=problem_type("store-unavailable"),
        instance=_instance(request),
        headers={"Retry-After": "1"},
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """Any other exception: a fixed 500 problem. Starlette's ServerErrorMiddleware sends
    this and then re-raises, so the server logs the traceback; the client never sees it."""
    return problem_response(
        500,
        "Internal Server Error",
        "an unexpected error occurred; it has been logged",
        type_=problem_type("internal-error"),
        instance=_instance(request),
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Exception, _unexpected)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ProblemError, _problem_error)
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(KeyRingError, _domain_error)
    for error in (
        OperationalError,
        InterfaceError,
        ProgrammingError,
        PersistenceError,
        StoreUnavailable,
    ):
        app.add_exception_handler(error, _store_unavailable)


_DESCRIPTIONS = {
    400: "Malformed request (a body that does not parse, a cursor that does not decode)",
    401: "Missing, unknown or revoked token",
    403: "The token's role may not use this route",
    404: "Not found",
    409: "Refused: risk rejection, illegal transition, conflicting write, or a "
    "`min_position` beyond the end of the log",
    422: "The request is not valid",
    503: "Temporarily unavailable (read model behind, store or approvals unavailable)",
}


def documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for problem responses (served as application/problem+json)."""
    return {code: {"model": Problem, "description": _DESCRIPTIONS[code]} for code in codes}
