"""JSON-lines logging on stderr: one object per record, request id bound, secrets redacted.

Standard-library `logging` only: application code logs with `extra={...}` and never
needs to know about this module. Every line has `ts`, `level`, `logger`, `event`, the
request id bound by `bind_request_id` (the HTTP middleware does), and the record's
extra fields. Secrets are removed three ways before a line is written:

* a field whose key names a secret (token, authorization, secret, api_key, hmac, ...)
  is replaced by `***`, at any depth;
* text that carries a secret by shape (`Bearer <x>`, `token=<x>`, `user:pass@` in a
  URL) keeps its shape and loses the value;
* the literal values of the secret-bearing `AIS_*` environment variables (HMAC keys,
  exchange key and secret, webhook secret, ...) are blanked wherever they occur.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TextIO, get_args

from pydantic import SecretStr

from adapters.settings import LogLevel
from domain.approval import KeyRing, KeyRingError

MASK = "***"
LEVELS: tuple[str, ...] = get_args(LogLevel)
MIN_LITERAL = 8  # shorter environment values are not secrets worth blanking everywhere

request_id: ContextVar[str | None] = ContextVar("ais_request_id", default=None)

_SECRET_KEY = re.compile(
    r"token|authorization|secret|passw|api_?key|hmac|signature|cookie|credential|private_?key",
    re.IGNORECASE,
)
_SECRET_TEXT = (
    (re.compile(r"(?i)\b(bearer)\s+[^\s\"',;]+"), r"\1 " + MASK),
    (
        re.compile(
            r"(?i)(token|secret|password|passwd|api_?key|authorization|signature)"
            r"([\"']?\s*[:=]\s*[\"']?)(?!bearer\s)[^\s\"',&;]+"
        ),
        r"\1\2" + MASK,
    ),
    (re.compile(r"(://[^/\s:@]+):[^@\s/]+@"), r"\1:" + MASK + "@"),
)
_PATH_SUFFIXES = ("_file", "_dir", "_path", "_FILE", "_DIR", "_PATH")
# Every attribute a LogRecord has of its own; the rest came in through `extra=`.
# uvicorn's `color_message` repeats the message with terminal colours.
_RESERVED = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


@contextmanager
def bind_request_id(value: str) -> Iterator[str]:
    """Stamp every record logged in this context (and threads it spawns) with `value`."""
    token = request_id.set(value)
    try:
        yield value
    finally:
        request_id.reset(token)


def is_secret_key(key: str) -> bool:
    """Whether a field or setting with this name holds a secret (by its name alone); a
    file or folder that holds one is named, not secret."""
    return bool(_SECRET_KEY.search(key)) and not key.lower().endswith(_PATH_SUFFIXES)


def redact(value: Any, key: str = "", secrets: Sequence[str] = ()) -> Any:
    """`value` as JSON-ready data with every secret masked: by the key it is under, by
    its shape in text, and each of the literal `secrets` wherever it occurs."""
    if value is not None and (isinstance(value, SecretStr) or (key and is_secret_key(key))):
        return MASK
    if isinstance(value, Mapping):
        return {str(k): redact(v, str(k), secrets) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v, "", secrets) for v in value]
    if isinstance(value, int | float | None):  # bool is an int
        return value
    if isinstance(value, Decimal):
        return format(value, "f")  # exact, never 1E-8
    text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    for secret in secrets:
        text = text.replace(secret, MASK)
    for pattern, replacement in _SECRET_TEXT:
        text = pattern.sub(replacement, text)
    return text


def environment_secrets(environ: Mapping[str, str]) -> set[str]:
    """The literal secret values in `AIS_*` variables (file paths are not secrets).

    A URL's password is secret, and so is a webhook URL whole (it often carries a token).
    """
    found: set[str] = set()
    for name, value in environ.items():
        if not name.startswith("AIS_") or name.endswith(_PATH_SUFFIXES):
            continue
        if name.endswith("_URL") and "WEBHOOK" not in name:
            found.update(_url_passwords(value))
        elif is_secret_key(name) or "WEBHOOK" in name or name.endswith(("_KEY", "_KEYS")):
            found.add(value.strip())
        if name == "AIS_RISK_HMAC_KEYS":
            with suppress(KeyRingError):  # malformed: the whole value is still blanked
                found.update(s.decode() for _, s in KeyRing.parse(value).keys)
    return {s for s in found if len(s) >= MIN_LITERAL}


def _url_passwords(url: str) -> list[str]:
    match = re.search(r"://[^/\s:@]+:([^@\s/]+)@", url)
    return [match.group(1)] if match else []


class JsonFormatter(logging.Formatter):
    """One JSON object per record; see the module docstring for what is redacted."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Longest first: a secret that contains another is blanked whole.
        self._secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        bound = request_id.get()
        if bound is not None:
            entry["request_id"] = bound
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(redact(entry, secrets=self._secrets), ensure_ascii=False)


class StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stderr` is when a record comes (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        """Fixed to sys.stderr."""


def configure_logging(
    level: str = "INFO",
    *,
    stream: TextIO | None = None,
    secrets: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
) -> logging.Handler:
    """Route every logger to one JSON-lines handler on `stream` (default stderr).

    Replaces the root logger's handlers (a second call reconfigures, it never doubles
    the lines). `secrets` adds literal values to blank besides the environment's.
    """
    if level.upper() not in LEVELS:
        raise ValueError(f"log level {level!r}: one of {', '.join(LEVELS)}")
    values = environment_secrets(os.environ if environ is None else environ) | set(secrets)
    handler = StderrHandler() if stream is None else logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(values))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # HTTP clients log every request's full URL at INFO, and an alert webhook's URL is
    # itself a secret; our own lines already say what was called and how it went.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    return handler
