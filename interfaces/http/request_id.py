"""`X-Request-ID`: the correlation id that ties an HTTP call to the approvals and events it
caused.

The caller's id is kept when it is a plain token (letters, digits, `._:-`, at most 128),
else a new one is made. It is bound for the whole request (every log line of the
handler, its thread-pool work and the TradingApp carries `request_id`), returned in the
response header, and the request is logged once when it ends (probes at debug level),
unless the access log is off: that line is a third of the CPU a small read costs.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.logging_json import bind_request_id

HEADER = "X-Request-ID"
PROBES = frozenset({"/healthz", "/readyz", "/metrics"})  # polled often: debug lines only
_ACCEPTED = re.compile(r"[A-Za-z0-9._:-]{1,128}")
log = logging.getLogger("ais.http")


def request_id_of(scope: Scope) -> str:
    """The caller's id when it is safe to log and echo, else a fresh one."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = bytes(value).decode("latin-1").strip()
            if _ACCEPTED.fullmatch(text):
                return text
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Pure ASGI, outermost of ours: even a 401 carries the id."""

    def __init__(self, app: ASGIApp, *, log_requests: bool = True) -> None:
        self.app = app
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = request_id_of(scope)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[HEADER] = rid
            await send(message)

        with bind_request_id(rid):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                if self.log_requests:
                    self._log(scope, status, started)

    @staticmethod
    def _log(scope: Scope, status: int, started: float) -> None:
        log.log(
            logging.DEBUG if scope["path"] in PROBES else logging.INFO,
            "http request",
            extra={
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
