"""API tokens: made once by `ais token create`, stored only as SHA-256 hashes.

A token is `ais_` + 32 bytes from `secrets` (base64url, 43 characters), so it carries 256
bits of entropy. Hashing it with one SHA-256 is enough: a slow password hash (scrypt,
argon2) exists to make guessing *low-entropy* secrets expensive, and nobody can enumerate
2**256 candidates however fast the hash is. A slow hash would instead cost tens of
milliseconds of CPU on every request. The file therefore holds `sha256(token)` only; a
stolen file does not let anyone authenticate, and the server never sees a stored token.

The presented token's hash is compared with every stored hash by `hmac.compare_digest`
(constant time, and no early exit over the entries), so response timing tells nothing
about how much of a hash matched.

File (`$AIS_HOME/api-tokens.toml`, or `AIS_API_TOKENS_FILE`), mode 0600::

    [tokens."alice"]
    role = "operator"
    sha256 = "<64 hex digits>"
    created_at = "2024-01-02T09:00:00+00:00"
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import os
import re
import secrets
import threading
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from adapters.settings import Settings

ROLES = ("viewer", "operator", "auditor")
TOKEN_PREFIX = "ais_"
TOKEN_FILE = "api-tokens.toml"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_MAX_TOKEN_LENGTH = 200


class TokenError(ValueError):
    """A token file or a token request that cannot be used; one line, names the file."""


@dataclass(frozen=True)
class ApiToken:
    name: str
    role: str
    sha256: str
    created_at: str


def tokens_file(settings: Settings) -> Path:
    return settings.api_tokens_file or settings.home / TOKEN_FILE


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise TokenError(
            f"token name {name!r}: use 1-64 letters, digits, '_', '.', '@' or '-' "
            "(starting with a letter or digit)"
        )
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise TokenError(f"role {role!r}: must be one of {', '.join(ROLES)}")
    return role


def load_tokens(path: Path) -> dict[str, ApiToken]:
    """The tokens in the file; a missing file is an empty set (every request gets 401)."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TokenError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise TokenError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return _parse(path, data)


def _parse(path: Path, data: dict[str, Any]) -> dict[str, ApiToken]:
    unknown = set(data) - {"tokens"}
    if unknown:
        raise TokenError(f"{path}: unknown key {sorted(unknown)[0]!r}")
    table = data.get("tokens", {})
    if not isinstance(table, dict):
        raise TokenError(f"{path}: tokens must be a table")
    found: dict[str, ApiToken] = {}
    for name, entry in table.items():
        where = f"{path}: tokens.{name}"
        if not isinstance(entry, dict):
            raise TokenError(f"{where}: must be a table")
        try:
            check_name(name)
            role = check_role(str(entry.get("role")))
        except TokenError as exc:
            raise TokenError(f"{where}: {exc}") from None
        digest = entry.get("sha256")
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise TokenError(f"{where}: sha256 must be 64 lowercase hex digits")
        found[name] = ApiToken(name, role, digest, str(entry.get("created_at", "")))
    return found


def _dump(tokens: dict[str, ApiToken]) -> str:
    lines = [
        "# AIS API tokens, written by `ais token create`. Only SHA-256 hashes are stored:",
        "# the tokens themselves were printed once and cannot be recovered from this file.",
    ]
    for token in sorted(tokens.values(), key=lambda t: t.name):
        # Names, roles, hex digests and ISO timestamps need no TOML escaping.
        lines += [
            "",
            f'[tokens."{token.name}"]',
            f'role = "{token.role}"',
            f'sha256 = "{token.sha256}"',
            f'created_at = "{token.created_at}"',
        ]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise read-modify-write of the token file between concurrent `ais` commands."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write(path: Path, tokens: dict[str, ApiToken]) -> None:
    """Atomically replace the file (mode 0600): readers see the old or the new file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(_dump(tokens))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def create_token(path: Path, name: str, role: str, now: datetime) -> str:
    """Store the hash of a fresh token under `name`; return the token (shown once)."""
    check_name(name)
    check_role(role)
    with _locked(path):
        tokens = load_tokens(path)
        if name in tokens:
            raise TokenError(f"token {name!r} already exists in {path}; revoke it first")
        token = new_token()
        tokens[name] = ApiToken(name, role, hash_token(token), now.isoformat())
        _write(path, tokens)
    return token


def revoke_token(path: Path, name: str) -> None:
    with _locked(path):
        tokens = load_tokens(path)
        if name not in tokens:
            raise TokenError(f"no token named {name!r} in {path}")
        del tokens[name]
        _write(path, tokens)


class TokenStore:
    """The server's view of the token file, re-read when the file changes on disk.

    The file is looked at (one `stat`) at most every `recheck_seconds`, so a token
    created or revoked with `ais token` counts on a running server within a second.
    """

    def __init__(self, path: Path, recheck_seconds: float = 1.0) -> None:
        self.path = path
        self.recheck_seconds = recheck_seconds
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._tokens: tuple[ApiToken, ...] = ()
        self._checked = 0.0
        self.reload()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def reload(self) -> None:
        """Raises TokenError when the file is unreadable: the caller fails closed."""
        with self._lock:
            stamp = self._stat()
            if stamp == self._stamp and stamp is not None:
                return
            self._tokens = tuple(load_tokens(self.path).values())
            self._stamp = stamp

    def __len__(self) -> int:
        return len(self._tokens)

    def authenticate(self, presented: str) -> ApiToken | None:
        now = time.monotonic()
        if now - self._checked >= self.recheck_seconds:
            if self._stat() != self._stamp:
                self.reload()
            self._checked = now
        if not presented or len(presented) > _MAX_TOKEN_LENGTH:
            return None
        digest = hash_token(presented).encode("ascii")
        found: ApiToken | None = None
        for token in self._tokens:  # no early exit: every entry is compared
            if hmac.compare_digest(digest, token.sha256.encode("ascii")):
                found = token
        return found
