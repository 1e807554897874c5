"""A cap on request bodies, enforced while they arrive rather than after buffering them.

Without it a client could make the server hold any amount of memory: FastAPI reads the
whole body before validation refuses it, and the webhook is open to anyone who can
reach it. A declared `Content-Length` over the cap is refused before anything is read;
a chunked body is counted as it streams in and refused once it passes the cap. Either
way the answer is a 413 problem (raised as an HTTP error, so the app's problem handler
writes it).
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interfaces.http.problems import problem_response

MAX_BODY_BYTES = 1024 * 1024  # the largest legitimate body (a control command) is tiny
_NO_BODY = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


def _too_large(limit: int) -> str:
    return f"the request body is over {limit} bytes"


class BodyLimit:
    """Pure ASGI middleware: 413 for a request body over `limit` bytes."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _NO_BODY:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            response = problem_response(
                413, "Content Too Large", _too_large(self.limit), instance=scope.get("path")
            )
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise HTTPException(413, _too_large(self.limit))
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
