"""Commands: the only way to ask for a state change. Each names its target aggregate."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.canonical import encode_plain, plain
from domain.errors import InvalidCommand
from domain.values import Mode, OrderType, Side, check_text, to_decimal

_POSITION_NS = uuid5(NAMESPACE_URL, "ais:position")
_DESK_NS = uuid5(NAMESPACE_URL, "ais:riskdesk")


def position_id(account_id: str, instrument: str) -> UUID:
    """One Position per account and instrument, so its id is derived, never chosen."""
    return uuid5(_POSITION_NS, f"{account_id}|{instrument}")


def desk_id(account_id: str) -> UUID:
    return uuid5(_DESK_NS, account_id)


def _text(value: object, name: str, *, max_len: int = 200) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidCommand(f"{name} must be a non-empty string")
    return check_text(value, name, max_len)


def _uuid(value: object, name: str) -> UUID:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise InvalidCommand(f"{name} is not a UUID: {value!r}") from None


def _positive(value: object, name: str) -> Decimal:
    result = to_decimal(value, name)
    if result <= 0:
        raise InvalidCommand(f"{name} must be positive, got {result}")
    return result


def _enum(enum: type[Any], value: object, name: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise InvalidCommand(f"{name} must be one of {allowed}, got {value!r}") from None


# Field names per command class, looked up once: fields() runs several times per approval.
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


@dataclass(frozen=True)
class Command:
    """Base: fields are coerced and checked on construction, so a bad command never exists."""

    target_field: ClassVar[str]
    creates: ClassVar[bool] = False

    @property
    def command_type(self) -> str:
        return type(self).__name__

    @property
    def target_id(self) -> UUID:
        value = getattr(self, self.target_field)
        assert isinstance(value, UUID)
        return value

    def fields(self) -> dict[str, Any]:
        names = _FIELD_NAMES.get(type(self))
        if names is None:
            names = _FIELD_NAMES[type(self)] = tuple(f.name for f in dataclasses.fields(self))
        return {name: getattr(self, name) for name in names}

    def digest(self) -> str:
        """SHA-256 of the canonical JSON of this command's own fields (computed once)."""
        cached: str | None = self.__dict__.get("_digest")
        if cached is None:
            cached = hashlib.sha256(encode_plain(self._plain_fields())).hexdigest()
            self.__dict__["_digest"] = cached
        return cached

    def _plain_fields(self) -> dict[str, Any]:
        """The fields made plain once (the digest and the intent digest both encode them)."""
        cached: dict[str, Any] | None = self.__dict__.get("_plain")
        if cached is None:
            cached = self.__dict__["_plain"] = plain(self.fields())
        return cached

    def _set(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)


@dataclass(frozen=True)
class StartSession(Command):
    session_id: UUID
    mode: Mode
    starting_capital: Decimal
    config_digest: str
    target_field: ClassVar[str] = "session_id"
    creates: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self._set("session_id", _uuid(self.session_id, "session_id"))
        self._set("mode", _enum(Mode, self.mode, "mode"))
        self._set("starting_capital", _positive(self.starting_capital, "starting_capital"))
        self._set("config_digest", _text(self.config_digest, "config_digest"))


@dataclass(frozen=True)
class _SessionCommand(Command):
    session_id: UUID
    reason: str
    target_field: ClassVar[str] = "session_id"

    def __post_init__(self) -> None:
        self._set("session_id", _uuid(self.session_id, "session_id"))
        self._set("reason", _text(self.reason, "reason", max_len=500))


class HaltSession(_SessionCommand):
    pass


class ResumeSession(_SessionCommand):
    pass


class EndSession(_SessionCommand):
    pass


@dataclass(frozen=True)
class PlaceOrder(Command):
    order_id: UUID
    session_id: UUID
    instrument: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    limit_price: Decimal | None = None
    reduce_only: bool = False
    target_field: ClassVar[str] = "order_id"
    creates: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self._set("order_id", _uuid(self.order_id, "order_id"))
        self._set("session_id", _uuid(self.session_id, "session_id"))
        self._set("instrument", _text(self.instrument, "instrument", max_len=40))
        self._set("side", _enum(Side, self.side, "side"))
        self._set("order_type", _enum(OrderType, self.order_type, "order_type"))
        self._set("quantity", _positive(self.quantity, "quantity"))
        if self.order_type is OrderType.LIMIT:
            self._set("limit_price", _positive(self.limit_price, "limit_price"))
        elif self.limit_price is not None:
            raise InvalidCommand("a MARKET order takes no limit_price")
        if not isinstance(self.reduce_only, bool):
            raise InvalidCommand("reduce_only must be true or false")

    def intent_digest(self) -> str:
        """The economic content without ids: two of these in a row are a duplicate order."""
        cached: str | None = self.__dict__.get("_intent")
        if cached is None:
            fields = {k: v for k, v in self._plain_fields().items() if k != "order_id"}
            cached = hashlib.sha256(encode_plain(fields)).hexdigest()
            self.__dict__["_intent"] = cached
        return cached


@dataclass(frozen=True)
class SubmitOrder(Command):
    order_id: UUID
    client_order_id: str
    target_field: ClassVar[str] = "order_id"

    def __post_init__(self) -> None:
        self._set("order_id", _uuid(self.order_id, "order_id"))
        self._set("client_order_id", _text(self.client_order_id, "client_order_id", max_len=64))


@dataclass(frozen=True)
class AcknowledgeOrder(Command):
    order_id: UUID
    exchange_order_id: str
    target_field: ClassVar[str] = "order_id"

    def __post_init__(self) -> None:
        self._set("order_id", _uuid(self.order_id, "order_id"))
        self._set("exchange_order_id", _text(self.exchange_order_id, "exchange_order_id"))


@dataclass(frozen=True)
class _OrderEnd(Command):
    order_id: UUID
    reason: str
    target_field: ClassVar[str] = "order_id"

    def __post_init__(self) -> None:
        self._set("order_id", _uuid(self.order_id, "order_id"))
        self._set("reason", _text(self.reason, "reason", max_len=500))


class CancelOrder(_OrderEnd):
    pass


class RejectOrder(_OrderEnd):
    pass


class ExpireOrder(_OrderEnd):
    pass


class _FillChecks(Command):
    """Shared checks of a fill's facts; each fill command declares its own field order."""

    order_id: UUID
    trade_id: str
    quantity: Decimal
    price: Decimal
    fee: Decimal
    filled_at: datetime

    def _check_fill(self) -> None:
        self._set("order_id", _uuid(self.order_id, "order_id"))
        self._set("trade_id", _text(self.trade_id, "trade_id"))
        self._set("quantity", _positive(self.quantity, "quantity"))
        self._set("price", _positive(self.price, "price"))
        fee = to_decimal(self.fee, "fee")
        if fee < 0:
            raise InvalidCommand(f"fee must not be negative, got {fee}")
        self._set("fee", fee)
        if not isinstance(self.filled_at, datetime) or self.filled_at.tzinfo is None:
            raise InvalidCommand("filled_at must be a timezone-aware datetime")


@dataclass(frozen=True)
class RecordFill(_FillChecks):
    """A fill against an Order; the exchange trade id makes it apply once."""

    order_id: UUID
    trade_id: str
    quantity: Decimal
    price: Decimal
    fee: Decimal
    filled_at: datetime
    target_field: ClassVar[str] = "order_id"

    def __post_init__(self) -> None:
        self._check_fill()


@dataclass(frozen=True)
class ApplyFill(_FillChecks):
    """The same fill applied to the account's Position in the instrument."""

    account_id: str
    instrument: str
    side: Side
    order_id: UUID
    trade_id: str
    quantity: Decimal
    price: Decimal
    fee: Decimal
    filled_at: datetime
    target_field: ClassVar[str] = "position_id"

    def __post_init__(self) -> None:
        self._set("account_id", _text(self.account_id, "account_id"))
        self._set("instrument", _text(self.instrument, "instrument", max_len=40))
        self._set("side", _enum(Side, self.side, "side"))
        self._check_fill()

    @property
    def position_id(self) -> UUID:
        return position_id(self.account_id, self.instrument)


COMMAND_TYPES: dict[str, type[Command]] = {
    cls.__name__: cls
    for cls in (
        StartSession,
        HaltSession,
        ResumeSession,
        EndSession,
        PlaceOrder,
        SubmitOrder,
        AcknowledgeOrder,
        CancelOrder,
        RejectOrder,
        ExpireOrder,
        RecordFill,
        ApplyFill,
    )
}


def command_from_dict(command_type: str, fields: dict[str, Any]) -> Command:
    """Build a command from untrusted input (CLI/HTTP): unknown types are bad input."""
    cls = COMMAND_TYPES.get(command_type)
    if cls is None:
        raise InvalidCommand(f"unknown command {command_type!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(fields) - names
    if unknown:
        raise InvalidCommand(f"{command_type} has no field(s) {', '.join(sorted(unknown))}")
    try:
        return cls(**fields)
    except TypeError as exc:
        raise InvalidCommand(f"{command_type}: {exc}") from None
