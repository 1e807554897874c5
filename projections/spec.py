"""What a projection is: tables it owns, events it reads, and a pure handler.

Rows are plain dicts of `str`/`int`/`None`. Money is written as the exact Decimal string,
so a rebuild on SQLite and on PostgreSQL dumps the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

Row = dict[str, Any]


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    integer_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoggedEvent:
    """One notification, decoded: its log position, topic, originator and event state."""

    position: int
    topic: str
    originator_id: str
    originator_version: int
    state: dict[str, Any]
    kind: str = field(init=False)  # 'Aggregate.Event', e.g. 'Order.Placed'

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", self.topic.split(":", 1)[1])


class Rows(Protocol):
    """The batch's view of a projection's tables: reads see the batch's own writes."""

    def get(self, table: str, key: tuple[Any, ...]) -> Row | None: ...

    def put(self, table: str, row: Row) -> None: ...

    def scan(self, table: str) -> list[Row]: ...


class Projection(Protocol):
    name: str
    version: int  # bump to rebuild this read model from position 0
    tables: tuple[TableSpec, ...]

    def handle(self, event: LoggedEvent, rows: Rows) -> None: ...


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
    return value if isinstance(value, Decimal) else Decimal(str(value))
