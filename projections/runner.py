"""The projector: reads the log in batches and feeds every projection exactly once.

Each projection's rows and its tracking position are committed in one transaction per
batch, guarded by the position the batch started from. A crash mid-batch loses the whole
batch (it is read again); a second projector racing on the same projection loses its
commit (it re-reads its position); so no event is skipped and none is applied twice.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Protocol

from projections.spec import FinishesBatches, LoggedEvent, Projection, Rows, SelectsEvents

Progress = Callable[[int, int], None]  # (position reached, head)


class EventSource(Protocol):
    def head(self) -> int: ...

    def read(self, after: int, limit: int) -> list[LoggedEvent]: ...


class TrackingConflict(Exception):
    """Another projector advanced this projection first; re-read and go on."""


class ReadStore(Protocol):
    def prepare(self, projection: Projection) -> bool: ...

    def reset(self, projection: Projection) -> None: ...

    def position(self, name: str) -> int: ...

    def rows(self, projection: Projection) -> Rows: ...

    def commit(
        self, projection: Projection, rows: Rows, *, position: int, expected: int
    ) -> None: ...

    def abort(self, rows: Rows) -> None: ...


@contextmanager
def cycle_collector_paused() -> Iterator[None]:
    """Hold the cyclic garbage collector for one batch.

    A batch keeps thousands of freshly decoded dicts alive, and each allocation burst
    made the collector walk them again; they hold no cycles, so it found nothing. It runs
    as usual between batches, so whatever a batch did leave behind is still collected.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class Projector:
    def __init__(
        self,
        source: EventSource,
        store: ReadStore,
        projections: Iterable[Projection],
        *,
        batch_size: int = 1000,
    ) -> None:
        self.source = source
        self.store = store
        self.projections = list(projections)
        self.batch_size = batch_size
        self.rebuilt = [p.name for p in self.projections if store.prepare(p)]
        # per selective projection: its `wants`, and its answer per event kind (asked once)
        self._wanted: dict[str, tuple[Callable[[str], bool], dict[str, bool]]] = {
            p.name: (p.wants, {}) for p in self.projections if isinstance(p, SelectsEvents)
        }

    def lag(self) -> dict[str, int]:
        """Events behind the head of the log, per projection."""
        head = self.source.head()
        return {p.name: head - self.store.position(p.name) for p in self.projections}

    def run_once(self, progress: Progress | None = None, stop_at: int | None = None) -> int:
        """Process the log up to its head (or `stop_at`); returns notifications read."""
        positions = {p.name: self.store.position(p.name) for p in self.projections}
        read = 0
        while True:
            with cycle_collector_paused():
                last = self._batch(positions, stop_at)
            if last == 0:
                return read
            read += last
            if progress is not None:
                progress(min(positions.values()), self.source.head())

    def _batch(self, positions: dict[str, int], stop_at: int | None) -> int:
        """Read one batch and feed it to every projection; returns events read."""
        after = min(positions.values())
        limit = self.batch_size if stop_at is None else min(self.batch_size, stop_at - after)
        events = self.source.read(after=after, limit=limit) if limit > 0 else []
        if stop_at is not None:
            events = [e for e in events if e.position <= stop_at]
        if not events:
            return 0
        kinds = {e.kind for e in events}
        for projection in self.projections:
            done = positions[projection.name]
            todo = events if done < events[0].position else [e for e in events if e.position > done]
            if not todo:
                continue
            try:
                wanted = self._wanted_by(projection, todo, kinds)
                self._apply(projection, wanted, done, todo[-1].position)
                positions[projection.name] = todo[-1].position
            except TrackingConflict:
                positions[projection.name] = self.store.position(projection.name)
        return len(events)

    def _wanted_by(
        self, projection: Projection, events: list[LoggedEvent], kinds: set[str]
    ) -> list[LoggedEvent]:
        """The events of the projection's kinds (`kinds`: those in the batch, or more)."""
        if projection.name not in self._wanted:
            return events
        wants, wanted = self._wanted[projection.name]
        for kind in kinds.difference(wanted):
            wanted[kind] = wants(kind)
        if all(wanted[kind] for kind in kinds):  # a rebuild's lane reads only these
            return events
        return [e for e in events if wanted[e.kind]]

    def _apply(
        self, projection: Projection, events: list[LoggedEvent], expected: int, position: int
    ) -> None:
        """Handle `events` and move the projection's tracking to `position` in one commit."""
        rows = self.store.rows(projection)
        try:
            for event in events:
                projection.handle(event, rows)
            if isinstance(projection, FinishesBatches):
                projection.finish(rows, position)
        except BaseException:
            self.store.abort(rows)  # release the batch's transaction (and SQLite's lock)
            raise
        self.store.commit(projection, rows, position=position, expected=expected)

    def follow(self, stop: threading.Event, poll_seconds: float = 0.2) -> None:
        """Keep up with the log until `stop` is set."""
        while not stop.is_set():
            if self.run_once() == 0:
                stop.wait(poll_seconds)
