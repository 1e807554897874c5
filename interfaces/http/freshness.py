"""Read-your-writes: `?min_position=N` waits until the read model has reached N.

Every read response says which log position it reflects (field `position`, header
`X-AIS-Position`). A client that wrote something (a control-plane response carries the
position of the write) passes it as `min_position`:

* N beyond the end of the log: **409** problem+json `urn:ais:problem:position-not-in-log`
  at once (members `min_position`, `head`). No write has produced that position, so
  waiting could not help; a client can only have such a number by mistake.
* otherwise the request waits until the read model's tracking position is at least N,
  polling every few milliseconds, for at most `Services.max_wait_seconds` (5 s by
  default). Still behind then: **503** problem+json `urn:ais:problem:read-model-behind`
  with `Retry-After: 1` and the members `min_position` and `position` (where the read
  model is). The request was valid and will succeed once the projector catches up: a
  temporary unavailability of the server, not a conflict with the resource.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, TypeAdapter
from starlette.concurrency import run_in_threadpool

from interfaces.http.problems import ProblemError
from interfaces.http.services import Services

POSITION_HEADER = "X-AIS-Position"
MAX_POSITION = 2**63 - 1
_FIRST_POLL = 0.005
_LAST_POLL = 0.05

_MIN_POSITION_TEXT = (
    "wait (at most 5 s) until the read model reflects this log position; "
    "503 if it does not by then, 409 if the log has no such position"
)
# `min_position` is read by `fresh` itself rather than declared as a FastAPI parameter:
# on `/v1/portfolio` (no other parameter) that skips FastAPI's parameter machinery, a
# tenth of the request. Each read route documents it with `openapi_extra=MIN_POSITION`.
MIN_POSITION: dict[str, Any] = {
    "parameters": [
        {
            "name": "min_position",
            "in": "query",
            "required": False,
            "description": _MIN_POSITION_TEXT,
            "schema": {"type": "integer", "minimum": 0, "maximum": MAX_POSITION},
        }
    ]
}
_DIGITS = re.compile(r"[0-9]{1,19}")


def min_position_of(request: Request) -> int | None:
    """The `min_position` query parameter, validated like FastAPI would (422 if bad)."""
    raw = request.query_params.get("min_position")
    if raw is None:
        return None
    if _DIGITS.fullmatch(raw) and int(raw) <= MAX_POSITION:
        return int(raw)
    raise RequestValidationError(
        [
            {
                "type": "int_parsing" if not _DIGITS.fullmatch(raw) else "less_than_equal",
                "loc": ("query", "min_position"),
                "msg": f"Input should be an integer from 0 to {MAX_POSITION}",
                "input": raw,
            }
        ]
    )


def get_services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


async def services(request: Request) -> Services:
    """Dependency (async, so FastAPI does not hop to a thread pool just to return it)."""
    return get_services(request)


async def wait_for(
    current: Callable[[], Awaitable[int]], min_position: int, max_wait: float
) -> int:
    """Poll `current` until it reaches `min_position` or time runs out."""
    deadline = time.monotonic() + max_wait
    pause = _FIRST_POLL
    while True:
        position = await current()
        if position >= min_position:
            return position
        left = deadline - time.monotonic()
        if left <= 0:
            raise ProblemError(
                503,
                "read-model-behind",
                "Read model behind",
                f"the read model is at position {position}; it did not reach "
                f"{min_position} within {max_wait:g} s",
                headers={"Retry-After": "1"},
                min_position=min_position,
                position=position,
            )
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 2, _LAST_POLL)


async def fresh(request: Request, projection: str | None) -> Services:
    """Honour `min_position` for this projection (None: the log itself); the services.

    Called by each read endpoint rather than declared as a dependency: FastAPI's
    dependency resolution was the largest cost of a `/v1/portfolio` request.
    """
    svc = get_services(request)
    min_position = min_position_of(request)
    if min_position is not None:
        await _wait(svc, projection, min_position)
    return svc


async def _wait(svc: Services, projection: str | None, min_position: int) -> None:
    head = await run_in_threadpool(svc.events.head)
    if min_position > head:
        raise ProblemError(
            409,
            "position-not-in-log",
            "Position not in the log",
            f"the log ends at position {head}; nothing has been written at {min_position}",
            min_position=min_position,
            head=head,
        )
    if projection is None or projection not in svc.reads.names:
        return  # the log itself: it has reached `min_position` (checked above)

    async def tracked() -> int:
        return await svc.reads.call(svc.reads.position, projection)

    await wait_for(tracked, min_position, svc.max_wait_seconds)


def stamp(response: Response, position: int) -> None:
    response.headers[POSITION_HEADER] = str(position)


_ADAPTERS: dict[type[BaseModel], TypeAdapter[Any]] = {}


def respond(model: type[BaseModel], data: dict[str, Any]) -> Response:
    """The read's JSON, validated by its response model, with the position header.

    The same pydantic validation FastAPI would apply for `response_model`, serialised by
    pydantic-core straight to bytes: FastAPI's generic response path cost as much as
    the database read. (The route still declares `response_model` for OpenAPI.)
    """
    adapter = _ADAPTERS.get(model)
    if adapter is None:
        adapter = _ADAPTERS[model] = TypeAdapter(model)
    body = adapter.dump_json(adapter.validate_python(data))
    return Response(
        body, media_type="application/json", headers={POSITION_HEADER: str(data["position"])}
    )
