"""Canonical JSON: one byte string per value, so digests and signatures are stable."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

# One encoder for every call: json.dumps with options builds a new one each time.
_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_AS_IS: frozenset[type] = frozenset({str, int, bool, type(None)})


def _plain(value: Any) -> Any:
    kind = type(value)
    if kind in _AS_IS:
        return value
    return _converter(kind)(value)


def _plain_dict(value: dict[Any, Any]) -> dict[str, Any]:
    return {str(k): v if type(v) in _AS_IS else _converter(type(v))(v) for k, v in value.items()}


def _plain_list(value: list[Any] | tuple[Any, ...]) -> list[Any]:
    return [v if type(v) in _AS_IS else _converter(type(v))(v) for v in value]


def _plain_enum(value: Enum) -> Any:
    return _plain(value.value)


def _same(value: Any) -> Any:
    return value


def _refuse(value: Any) -> Any:
    raise TypeError(f"cannot canonicalise {type(value).__name__}")


# How each exact type is made plain; subclasses are resolved once, by isinstance, below.
_CONVERT: dict[type, Callable[[Any], Any]] = {
    Decimal: str,
    UUID: str,
    datetime: datetime.isoformat,
    dict: _plain_dict,
    list: _plain_list,
    tuple: _plain_list,
}


def _converter(kind: type) -> Callable[[Any], Any]:
    convert = _CONVERT.get(kind)
    if convert is None:
        convert = _resolve(kind)
        if convert is not _refuse:
            _CONVERT[kind] = convert
    return convert


def _resolve(kind: type) -> Callable[[Any], Any]:
    """The converter of a subclass (an enum, a str subclass, ...), by the first base that fits."""
    if issubclass(kind, Enum):
        return _plain_enum
    for base, convert in ((Decimal, str), (datetime, datetime.isoformat), (UUID, str)):
        if issubclass(kind, base):
            return convert
    if issubclass(kind, dict):
        return _plain_dict
    if issubclass(kind, list | tuple):
        return _plain_list
    if issubclass(kind, bool | int | str):
        return _same
    return _refuse


def plain(value: Any) -> Any:
    """The value as JSON's own types: Decimals, UUIDs, datetimes and enums as strings.

    For callers that encode one value several ways (a command's digest and its intent
    digest) or read it back (a token's dict): the conversion is the costly half.
    """
    return _plain(value)


def encode_plain(value: Any) -> bytes:
    """Canonical bytes of a value `plain` returned (or a part of one)."""
    return _ENCODE(value).encode("utf-8")


def canonical_bytes(value: Any) -> bytes:
    """Sorted keys, no whitespace, Decimals/UUIDs/datetimes as strings, UTF-8."""
    return encode_plain(_plain(value))


def sha256_hex(value: Any) -> str:
    return hashlib.sha256(canonical_bytes(value)).hexdigest()
