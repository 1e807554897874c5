"""The read models' live position, watched once per process for every console stream.

A console page keeps one Server-Sent Events stream open (`GET /v1/stream`) and refetches
what it shows when the position moves. However many pages are open, one asyncio task
per process reads the position (the slowest read model's tracking position and the head
of the log: two small queries), and only while at least one stream listens. It reads
every 50 ms after a change and backs off to once a second while nothing changes, so an
idle console costs the database one query pair a second, not one poll loop per client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from interfaces.http.services import Services

log = logging.getLogger("ais.http")
FASTEST_SECONDS = 0.05
SLOWEST_SECONDS = 1.0


@dataclass(frozen=True)
class Snapshot:
    """Where the read models are (`position`) and where the log ends (`head`)."""

    position: int
    head: int

    @property
    def lag(self) -> int:
        return max(0, self.head - self.position)


class PositionWatcher:
    """Fans one position poll out to every subscriber's one-slot queue."""

    def __init__(
        self,
        services: Services,
        fastest: float = FASTEST_SECONDS,
        slowest: float = SLOWEST_SECONDS,
    ) -> None:
        self.services = services
        self.fastest = fastest
        self.slowest = slowest
        self.latest: Snapshot | None = None
        self.polls = 0  # how many reads the watcher has made (one per tick, not per client)
        self._subscribers: set[asyncio.Queue[Snapshot]] = set()
        self._task: asyncio.Task[None] | None = None

    def read(self) -> Snapshot:
        head = self.services.events.head()
        positions = self.services.reads.positions_by_projection()
        return Snapshot(min(positions.values(), default=head), head)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[Snapshot]]:
        """A queue that always holds the newest snapshot not yet taken (stale ones drop)."""
        queue: asyncio.Queue[Snapshot] = asyncio.Queue(maxsize=1)
        self._subscribers.add(queue)
        if self.latest is not None:
            queue.put_nowait(self.latest)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="ais-position-watcher")
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    async def _run(self) -> None:
        pause = self.fastest
        while self._subscribers:
            try:
                snapshot: Snapshot | None = await run_in_threadpool(self.read)
                self.polls += 1
            except Exception:  # database restarting, say: keep the streams, retry later
                log.warning("position watcher: read failed", exc_info=True)
                snapshot = None
            if snapshot is not None and snapshot != self.latest:
                self.latest = snapshot
                for queue in self._subscribers:
                    _offer(queue, snapshot)
                pause = self.fastest
            else:
                pause = min(pause * 2, self.slowest)
            await asyncio.sleep(pause)
        self.latest = None  # nobody listened for a while: the next stream reads afresh


def _offer(queue: asyncio.Queue[Snapshot], snapshot: Snapshot) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(snapshot)


__all__ = ["PositionWatcher", "Snapshot"]
