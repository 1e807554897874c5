"""Base aggregate whose event timestamps come from the injected clock, not the wall.

The application sets the clock around each unit of work; a backtest over the same data
then writes the same events with the same timestamps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from copy import copy
from datetime import datetime
from typing import Any, Self

from eventsourcing.domain import Aggregate, datetime_now_with_tzinfo

_EVENT_CLOCK: ContextVar[Callable[[], datetime] | None] = ContextVar(
    "ais_event_clock", default=None
)


@contextmanager
def event_clock(clock: Callable[[], datetime]) -> Iterator[None]:
    """Stamp events triggered inside this block with the given clock."""
    token = _EVENT_CLOCK.set(clock)
    try:
        yield
    finally:
        _EVENT_CLOCK.reset(token)


def _now() -> datetime:
    clock = _EVENT_CLOCK.get()
    return clock() if clock is not None else datetime_now_with_tzinfo()


class AISAggregate(Aggregate):
    """Aggregate state holds immutable values or flat containers of them (a rule here).

    That lets the repository's copy-on-read be a one-level copy instead of a deep one;
    copying the RiskDesk on every command was the main cost of an approval.
    """

    class Event(Aggregate.Event):
        @staticmethod
        def create_timestamp() -> datetime:
            return _now()

    class Created(Event, Aggregate.Created):
        pass

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        clone = object.__new__(type(self))
        clone.__dict__.update(
            {
                k: copy(v) if isinstance(v, dict | list | set) else v
                for k, v in self.__dict__.items()
            }
        )
        return clone
