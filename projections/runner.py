"""The projector: reads the log in batches and feeds every projection exactly once.

Each projection's rows and its tracking position are committed in one transaction per
batch, guarded by the position the batch started from. A crash mid-batch loses the whole
batch (it is read again); a second projector racing on the same projection loses its
commit (it re-reads its position); so no event is skipped and none is applied twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Protocol

from projections.spec import FinishesBatches, LoggedEvent, Projection, Rows

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

    def lag(self) -> dict[str, int]:
        """Events behind the head of the log, per projection."""
        head = self.source.head()
        return {p.name: head - self.store.position(p.name) for p in self.projections}

    def run_once(self, progress: Progress | None = None, stop_at: int | None = None) -> int:
        """Process the log up to its head (or `stop_at`); returns notifications read."""
        positions = {p.name: self.store.position(p.name) for p in self.projections}
        read = 0
        while True:
            events = self.source.read(after=min(positions.values()), limit=self.batch_size)
            if stop_at is not None:
                events = [e for e in events if e.position <= stop_at]
            if not events:
                return read
            for projection in self.projections:
                todo = [e for e in events if e.position > positions[projection.name]]
                if not todo:
                    continue
                try:
                    self._apply(projection, todo, positions[projection.name])
                    positions[projection.name] = todo[-1].position
                except TrackingConflict:
                    positions[projection.name] = self.store.position(projection.name)
            read += len(events)
            if progress is not None:
                progress(events[-1].position, self.source.head())

    def _apply(self, projection: Projection, events: list[LoggedEvent], expected: int) -> None:
        rows = self.store.rows(projection)
        try:
            for event in events:
                projection.handle(event, rows)
            if isinstance(projection, FinishesBatches):
                projection.finish(rows, events[-1].position)
        except BaseException:
            self.store.abort(rows)  # release the batch's transaction (and SQLite's lock)
            raise
        self.store.commit(projection, rows, position=events[-1].position, expected=expected)

    def follow(self, stop: threading.Event, poll_seconds: float = 0.2) -> None:
        """Keep up with the log until `stop` is set."""
        while not stop.is_set():
            if self.run_once() == 0:
                stop.wait(poll_seconds)
