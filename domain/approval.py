"""The approval token: an HMAC over exactly one command, one target version, one window.

The RiskDesk issues it; the target aggregate verifies it in its command method before any
event exists. Replay never verifies again: the token is stored in the event as evidence.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.canonical import encode_plain, plain
from domain.commands import Command
from domain.errors import ApprovalError

Clock = Callable[[], datetime]

MIN_SECRET_BYTES = 32
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class KeyRingError(ValueError):
    """The HMAC key material is malformed or too weak."""


@dataclass(frozen=True)
class KeyRing:
    """HMAC keys by id; the first signs, all verify (rotation keeps old tokens valid)."""

    keys: tuple[tuple[str, bytes], ...]

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        """`key_id:secret` pairs separated by commas or newlines; '#' starts a comment."""
        pairs: list[tuple[str, bytes]] = []
        for raw in re.split(r"[,\n]", text):
            item = raw.strip()
            if not item or item.startswith("#"):
                continue
            key_id, sep, secret = item.partition(":")
            if not sep or not _KEY_ID.match(key_id.strip()):
                raise KeyRingError(
                    "malformed HMAC key: expected key_id:secret with key_id of letters, "
                    "digits, '.', '_' or '-'"
                )
            secret_bytes = secret.strip().encode("utf-8")
            if len(secret_bytes) < MIN_SECRET_BYTES:
                raise KeyRingError(
                    f"HMAC key {key_id.strip()!r} is {len(secret_bytes)} bytes; "
                    f"at least {MIN_SECRET_BYTES} are required"
                )
            if any(k == key_id.strip() for k, _ in pairs):
                raise KeyRingError(f"HMAC key id {key_id.strip()!r} appears twice")
            pairs.append((key_id.strip(), secret_bytes))
        return cls(tuple(pairs))

    @property
    def active_key_id(self) -> str | None:
        return self.keys[0][0] if self.keys else None

    def secret(self, key_id: str) -> bytes | None:
        return next((s for k, s in self.keys if k == key_id), None)

    def __repr__(self) -> str:  # never print secrets
        return f"KeyRing(key_ids={[k for k, _ in self.keys]})"


# The fields the HMAC covers, in the contract's order (DESIGN.md "Approval token").
_SIGNED = (
    "approval_id",
    "key_id",
    "command_type",
    "target_id",
    "target_version",
    "command_digest",
    "issued_at",
    "expires_at",
    "riskdesk_version",
)


@dataclass(frozen=True)
class ApprovalToken:
    approval_id: UUID
    key_id: str
    command_type: str
    target_id: UUID
    target_version: int | None
    command_digest: str
    issued_at: datetime
    expires_at: datetime
    riskdesk_version: int
    signature: str

    def signed_fields(self) -> list[Any]:
        """The fields in the contract's order; the HMAC covers exactly these."""
        return [getattr(self, name) for name in _SIGNED]

    def _plain_fields(self) -> list[Any]:
        """The signed fields made plain once per token (like a command's digest): signing,
        verifying and `to_dict` share the conversion.
        """
        cached: list[Any] | None = self.__dict__.get("_plain")
        if cached is None:
            cached = self.__dict__["_plain"] = plain(self.signed_fields())
        return cached

    def payload(self) -> bytes:
        """The canonical bytes the HMAC covers."""
        cached: bytes | None = self.__dict__.get("_payload")
        if cached is None:
            cached = self.__dict__["_payload"] = encode_plain(self._plain_fields())
        return cached

    def to_dict(self) -> dict[str, Any]:
        data = dict(zip(_SIGNED, self._plain_fields(), strict=True))
        data["signature"] = self.signature
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ApprovalToken:
        try:
            return cls(
                approval_id=UUID(str(data["approval_id"])),
                key_id=str(data["key_id"]),
                command_type=str(data["command_type"]),
                target_id=UUID(str(data["target_id"])),
                target_version=(
                    None if data["target_version"] is None else int(data["target_version"])
                ),
                command_digest=str(data["command_digest"]),
                issued_at=datetime.fromisoformat(str(data["issued_at"])),
                expires_at=datetime.fromisoformat(str(data["expires_at"])),
                riskdesk_version=int(data["riskdesk_version"]),
                signature=str(data["signature"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ApprovalError(f"malformed approval token: {exc}") from None


def _mac(secret: bytes, token: ApprovalToken) -> str:
    """HMAC-SHA256 hex of the token's canonical fields; hmac.digest is the one-shot C path."""
    return hmac.digest(secret, token.payload(), "sha256").hex()


def sign(
    keys: KeyRing,
    *,
    approval_id: UUID,
    command: Command,
    target_version: int | None,
    issued_at: datetime,
    expires_at: datetime,
    riskdesk_version: int,
) -> ApprovalToken:
    """Sign with the active key; with no key nothing can be approved (fail closed)."""
    key_id = keys.active_key_id
    if key_id is None:
        raise ApprovalError("no HMAC key configured: run `ais keys init` or set AIS_RISK_HMAC_KEYS")
    token = ApprovalToken(
        approval_id=approval_id,
        key_id=key_id,
        command_type=command.command_type,
        target_id=command.target_id,
        target_version=target_version,
        command_digest=command.digest(),
        issued_at=issued_at,
        expires_at=expires_at,
        riskdesk_version=riskdesk_version,
        signature="",
    )
    secret = keys.secret(key_id)
    assert secret is not None
    # Sign the token in place before anyone holds it: one construction, not two.
    object.__setattr__(token, "signature", _mac(secret, token))
    return token


@dataclass(frozen=True)
class Verifier:
    """What an aggregate needs to check a token: the key ring and the injected clock."""

    keys: KeyRing
    clock: Clock

    def verify(self, token: ApprovalToken, command: Command, target_version: int | None) -> None:
        """Raise ApprovalError unless the token authorises exactly this command now."""
        if not self.keys.keys:
            raise ApprovalError("no HMAC key configured: cannot verify approvals")
        secret = self.keys.secret(token.key_id)
        if secret is None:
            raise ApprovalError(f"unknown HMAC key id {token.key_id!r}")
        expected = _mac(secret, token)
        if not hmac.compare_digest(expected, token.signature):
            raise ApprovalError("approval signature does not verify")
        if token.command_type != command.command_type:
            raise ApprovalError(f"approval is for {token.command_type}, not {command.command_type}")
        if token.target_id != command.target_id:
            raise ApprovalError("approval is for another target")
        if token.target_version != target_version:
            raise ApprovalError(
                f"approval is for target version {token.target_version}, "
                f"target is at {target_version} (used or stale)"
            )
        if not hmac.compare_digest(token.command_digest, command.digest()):
            raise ApprovalError("approval digest does not match the command")
        now = self.clock()
        if now >= token.expires_at:
            raise ApprovalError(f"approval expired at {token.expires_at.isoformat()}")
        if now < token.issued_at:
            raise ApprovalError("approval issued in the future")
