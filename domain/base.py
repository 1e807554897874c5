"""Base aggregate whose event timestamps come from the injected clock, not the wall.

The application sets the clock around each unit of work; a backtest over the same data
then writes the same events with the same timestamps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

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
    class Event(Aggregate.Event):
        @staticmethod
        def create_timestamp() -> datetime:
            return _now()

    class Created(Event, Aggregate.Created):
        pass
