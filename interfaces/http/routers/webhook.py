"""`POST /v1/signals/webhook`: a TradingView-style external signal, recorded as an event.

Open to the webhook caller (no bearer token: the route is a plain `APIRoute`, which the
AuthMiddleware lets through) but authenticated by the shared secret `AIS_WEBHOOK_SECRET`
(at least 32 bytes), compared in constant time, in either form:

* header `X-AIS-Signature: sha256=<hex HMAC-SHA256 of the raw body>`, or
* a `secret` member in the JSON body (what TradingView alerts can send).

Replay window: `timestamp` (ISO-8601 with zone, or Unix seconds) must be within ±60 s of
the server's injected clock, and `id` (the nonce) must not have been received before;
the SignalInbox aggregate remembers ids longer than the window. Order of checks: body is
JSON (400) -> secret (401) -> fields (422) -> window (401) -> duplicate (409).
The answer is 202 with the log position of the `SignalInbox.SignalReceived` event.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from starlette.concurrency import run_in_threadpool

from application.signal_inbox import record_signal
from domain.errors import DomainError, InvalidCommand
from domain.signal_inbox import DuplicateSignal
from domain.values import to_decimal
from interfaces.http.freshness import stamp
from interfaces.http.problems import Problem, ProblemError, documented
from interfaces.http.routers._common import POSITION_HEADER_DOC

router = APIRouter(prefix="/v1/signals", tags=["signals"])

SIGNATURE_HEADER = "x-ais-signature"
MIN_SECRET_BYTES = 32
WINDOW = timedelta(seconds=60)
MAX_BODY = 64 * 1024
SOURCE = "webhook"

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
Symbol = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9._/-]{1,40}$")
]
DecimalText = Annotated[str, StringConstraints(pattern=r"^-?[0-9]{1,12}(\.[0-9]{1,18})?$")]


class WebhookIn(BaseModel):
    """The signal. Numbers may be JSON numbers or decimal strings."""

    model_config = ConfigDict(extra="ignore")

    id: Id = Field(description="unique per signal (nonce); a repeat is refused with 409")
    timestamp: str | int | float = Field(
        description="when it was sent: ISO-8601 with zone or Unix seconds; within ±60 s"
    )
    instrument: Symbol
    direction: Literal["long", "short", "flat"]
    confidence: DecimalText | float = Field(description="0 to 1")
    expected_return: DecimalText | float | None = None
    reason: Text
    secret: str | None = Field(
        default=None, description="the shared secret, when not signing with X-AIS-Signature"
    )


class SignalAccepted(BaseModel):
    signal_id: str
    position: int = Field(description="log position of the SignalReceived event")


def _problem(status: int, slug: str, title: str, detail: str) -> ProblemError:
    return ProblemError(status, slug, title, detail)


def configured_secret(request: Request) -> bytes:
    secret = getattr(request.app.state, "webhook_secret", None)
    if secret is None:
        secret = os.environ.get("AIS_WEBHOOK_SECRET", "")
    raw = secret if isinstance(secret, bytes) else str(secret).encode()
    if len(raw) < MIN_SECRET_BYTES:
        raise _problem(
            403,
            "webhook-disabled",
            "Webhook disabled",
            "the webhook needs AIS_WEBHOOK_SECRET of at least 32 bytes on the server",
        )
    return raw


def check_secret(secret: bytes, body: bytes, signature: str | None, field: object) -> None:
    """Constant-time check of the header HMAC or the body's `secret` member."""
    if signature is not None:
        scheme, _, digest = signature.strip().partition("=")
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
        if scheme.lower() == "sha256" and hmac.compare_digest(
            digest.strip().lower().encode(), expected.encode()
        ):
            return
        raise _problem(401, "bad-signature", "Unauthorized", "X-AIS-Signature does not match")
    if isinstance(field, str) and hmac.compare_digest(
        field.encode("utf-8", "surrogatepass"), secret
    ):
        return
    raise _problem(
        401,
        "bad-signature",
        "Unauthorized",
        "sign the body (X-AIS-Signature: sha256=<hmac>) or send the shared `secret`",
    )


def sent_at(value: str | int | float) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            raise _problem(422, "invalid-signal", "Invalid signal", "bad timestamp") from None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise _problem(
            422, "invalid-signal", "Invalid signal", "timestamp is not ISO-8601"
        ) from None
    if moment.tzinfo is None:
        raise _problem(422, "invalid-signal", "Invalid signal", "timestamp needs a time zone")
    return moment


def _decimal(value: str | float | None, name: str) -> Decimal | None:
    """A JSON number is taken by its shortest repr (0.012 -> "0.012"), never as binary."""
    if value is None:
        return None
    try:
        return to_decimal(str(value), name)
    except InvalidCommand as exc:
        raise _problem(422, "invalid-signal", "Invalid signal", str(exc)) from None


def parse(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_BODY:
        raise _problem(413, "too-large", "Payload too large", "the body is over 64 KiB")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than json can go
        raise _problem(400, "invalid-json", "Bad request", "the body is not JSON") from None
    if not isinstance(data, dict):
        raise _problem(400, "invalid-json", "Bad request", "the body is not a JSON object")
    return data


@router.post(
    "/webhook",
    status_code=202,
    response_model=SignalAccepted,
    responses={
        **documented(400, 401, 403, 409, 422, 503),
        413: {"model": Problem, "description": "The body is over 64 KiB"},
        202: {"headers": POSITION_HEADER_DOC},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": WebhookIn.model_json_schema()}},
        }
    },
)
async def receive_signal(request: Request, response: Response) -> dict[str, Any]:
    """Record an external signal (shared-secret auth, ±60 s replay window, unique id)."""
    secret = configured_secret(request)
    body = await request.body()
    data = parse(body)
    check_secret(secret, body, request.headers.get(SIGNATURE_HEADER), data.get("secret"))
    try:
        signal = WebhookIn.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise _problem(
            422, "invalid-signal", "Invalid signal", f"{where}: {first.get('msg', 'invalid')}"
        ) from None
    svc = request.app.state.services
    app = await run_in_threadpool(svc.trading_app)
    now = app.clock()
    when = sent_at(signal.timestamp)
    if abs(when - now) > WINDOW:
        raise _problem(
            401,
            "outside-replay-window",
            "Unauthorized",
            f"timestamp {when.isoformat()} is not within 60 s of {now.isoformat()}",
        )
    confidence = _decimal(signal.confidence, "confidence")
    fields = {
        "signal_id": signal.id,
        "instrument": signal.instrument,
        "direction": signal.direction,
        "confidence": confidence,
        "expected_return": _decimal(signal.expected_return, "expected_return"),
        "reason": signal.reason,
        "source": SOURCE,
        "sent_at": when,
    }

    def run() -> int:
        with svc.command_lock:
            return record_signal(app, app.clock, _account(app), **fields)

    try:
        position = await run_in_threadpool(run)
    except DuplicateSignal as exc:
        raise _problem(409, "duplicate-signal", "Duplicate signal", str(exc)) from None
    except DomainError as exc:
        raise _problem(422, "invalid-signal", "Invalid signal", str(exc)) from None
    stamp(response, position)
    return {"signal_id": signal.id, "position": position}


def _account(app: object) -> str:
    return str(getattr(app, "account_id", None) or os.environ.get("AIS_ACCOUNT_ID", "default"))
