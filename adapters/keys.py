"""HMAC key ring and audit key pair on disk: secrets only from the environment or files."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from adapters.settings import Settings
from domain.approval import KeyRing, KeyRingError

HMAC_FILE = "hmac.key"
AUDIT_PRIVATE = "audit-ed25519.pem"
AUDIT_PUBLIC = "audit-ed25519.pub.pem"


def load_keyring(settings: Settings) -> KeyRing:
    """AIS_RISK_HMAC_KEYS wins over the key file; no key at all gives an empty ring."""
    if settings.risk_hmac_keys is not None:
        return KeyRing.parse(settings.risk_hmac_keys.get_secret_value())
    path = settings.keys_file
    if not path.exists():
        return KeyRing(())
    try:
        return KeyRing.parse(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise KeyRingError(f"{path}: not a text key file") from None
    except KeyRingError as exc:
        raise KeyRingError(f"{path}: {exc}") from None


def _write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def init_keys(directory: Path) -> list[Path]:
    """Write a fresh HMAC key and Ed25519 audit key pair; never overwrite existing keys."""
    paths = [directory / HMAC_FILE, directory / AUDIT_PRIVATE, directory / AUDIT_PUBLIC]
    existing = [p for p in paths if p.exists()]
    if existing:
        raise FileExistsError(f"{existing[0]} exists; refusing to overwrite keys")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_id = f"k{secrets.token_hex(4)}"
    _write_secret(paths[0], f"{key_id}:{secrets.token_hex(32)}\n".encode())
    private = Ed25519PrivateKey.generate()
    _write_secret(
        paths[1],
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    paths[2].write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return paths
