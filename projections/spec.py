"""What a projection is: tables it owns, events it reads, and a pure handler.

Rows are plain dicts of `str`/`int`/`None`. Money is written as the exact Decimal string,
so a rebuild on SQLite and on PostgreSQL dumps the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

Row = dict[str, Any]


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    integer_columns: tuple[str, ...] = ()


class LoggedEvent:
    """One notification, decoded: its log position, topic, originator and event state.

    A plain slotted class rather than a frozen dataclass: a rebuild makes one per event
    of the log, and the frozen dataclass's constructor was a tenth of the projecting.
    Projections treat it as read-only.
    """

    __slots__ = ("_at", "kind", "originator_id", "originator_version", "position", "state", "topic")

    def __init__(
        self,
        position: int,
        topic: str,
        originator_id: str,
        originator_version: int,
        state: dict[str, Any],
        at: str | None = None,
    ) -> None:
        self.position = position
        self.topic = topic
        self.originator_id = originator_id
        self.originator_version = originator_version
        self.state = state
        self.kind: str = topic.split(":", 1)[1]  # 'Aggregate.Event', e.g. 'Order.Placed'
        self._at = at  # the timestamp's ISO text, when the decoder saw it stored as such

    @property
    def at(self) -> str:
        """The event's timestamp as ISO text, made once however many projections want it."""
        if self._at is None:
            self._at = self.state["timestamp"].isoformat()
        return self._at

    def __repr__(self) -> str:
        return f"LoggedEvent({self.position}, {self.kind}, {self.originator_id})"


class Rows(Protocol):
    """The batch's view of a projection's tables: reads see the batch's own writes."""

    def get(self, table: str, key: tuple[Any, ...]) -> Row | None: ...

    def put(self, table: str, row: Row) -> None: ...

    def scan(self, table: str) -> list[Row]: ...


class Projection(Protocol):
    """A read model. It may also have a `handling_cost`: what handling one of its events
    costs relative to other projections' (1.0 if absent). Only a rebuild's split into
    lanes uses it, to balance them; no result depends on it."""

    name: str
    version: int  # bump to rebuild this read model from position 0
    tables: tuple[TableSpec, ...]

    def handle(self, event: LoggedEvent, rows: Rows) -> None: ...


@runtime_checkable
class SelectsEvents(Protocol):
    """A projection that reads only some kinds of event.

    The projector hands it just those (its tracking position still moves over the rest),
    which spares a call per event of the log for every kind the projection ignores.
    """

    def wants(self, kind: str) -> bool: ...


@runtime_checkable
class ReadsFields(Protocol):
    """A projection that reads only some fields of an event kind's state.

    A rebuild then decodes just those fields of the kinds it reads for no other
    projection; the rest are left out of `state`, so reading one undeclared fails loudly.
    """

    def fields(self, kind: str) -> frozenset[str] | None:
        """The top-level keys of `kind`'s state this projection reads; None: all."""
        ...


@runtime_checkable
class FinishesBatches(Protocol):
    """A projection whose rows depend only on its state at the end of a batch.

    It writes them once per batch instead of once per event; the result is the same.
    """

    def finish(self, rows: Rows, position: int) -> None: ...


def num(value: Decimal) -> str:
    """Exact decimal text without exponent notation (a ratio of 0 is "0", not "0E+6")."""
    return format(value, "f")


def money(value: Decimal | None) -> str | None:
    return None if value is None else num(value)


def dec(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    return Decimal(value if type(value) is str else str(value))
