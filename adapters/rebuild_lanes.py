"""Lanes of a rebuild in other processes, one fresh interpreter each (`spawn`).

Each worker opens the log and the read store itself, runs `rebuild_lane` for its
projections and hands back their digests; its progress is one shared integer. Lanes
share no tables and each commits its own tracking, so a lane that fails leaves every
read model at a tracked position a projector can carry on from.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.pool import AsyncResult
from pathlib import Path
from typing import Any

from adapters.event_log import StoredEventSource
from adapters.read_store import SqlReadStore, engines
from projections.registry import select
from projections.replay import LaneRunner, rebuild_lane
from projections.runner import Progress
from projections.spec import Projection

_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class ReadSideSpec:
    """What a fresh process needs to open the same log and the same read-model tables."""

    env: dict[str, str]
    database_url: str | None
    home: Path
    prefix: str = "rm_"

    def open(self) -> tuple[StoredEventSource, SqlReadStore]:
        engine, schema = engines(self.database_url, self.home)
        return StoredEventSource(self.env), SqlReadStore(engine, schema, self.prefix)


_reached: Any = None  # in a worker: the shared positions its lanes report into


def _start_worker(reached: Any) -> None:
    global _reached
    _reached = reached


def _run_lane(
    spec: ReadSideSpec, names: list[str], counts: dict[str, int], stop: int, slot: int
) -> dict[str, str]:
    def progress(position: int, _head: int) -> None:
        _reached[slot] = position

    source, store = spec.open()
    try:
        return rebuild_lane(source, store, select(names), counts, stop, progress)
    finally:
        store.close()
        source.close()


class ProcessLanes:
    """Worker processes for lanes, started on construction, given lanes by `start`."""

    def __init__(self, spec: ReadSideSpec, workers: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.spec = spec
        self.stop = 0
        self._reached = context.Array("q", workers, lock=False)
        self._pool = context.Pool(workers, _start_worker, (self._reached,))
        self._results: list[AsyncResult[dict[str, str]]] = []

    def start(self, lanes: list[list[Projection]], counts: Mapping[str, int], stop: int) -> None:
        """One lane per worker (a plan may have fewer lanes than there are workers)."""
        if len(lanes) > len(self._reached):
            raise ValueError(f"{len(lanes)} lanes for {len(self._reached)} workers")
        self.stop = stop
        idle = len(self._reached) - len(lanes)
        self._reached[:] = [0] * len(lanes) + [stop] * idle  # an idle worker is done
        self._results = [
            self._pool.apply_async(
                _run_lane, (self.spec, [p.name for p in lane], dict(counts), stop, slot)
            )
            for slot, lane in enumerate(lanes)
        ]

    def reached(self) -> int:
        return int(min(self._reached))

    def wait(self, progress: Progress | None) -> dict[str, str]:
        """Their digests once all are done; the first lane's error if one fails."""
        try:
            while True:
                for result in self._results:
                    if result.ready() and not result.successful():
                        result.get()  # raises the lane's own error
                if progress is not None:
                    progress(self.reached(), self.stop)
                pending = [r for r in self._results if not r.ready()]
                if not pending:
                    break
                pending[0].wait(_POLL_SECONDS)
            digests: dict[str, str] = {}
            for result in self._results:
                digests.update(result.get())
            self._pool.close()
            return digests
        finally:
            self.cancel()

    def cancel(self) -> None:
        """Stop the workers (a lane's last batch is rolled back, as after a crash)."""
        self._pool.terminate()
        self._pool.join()


def process_lanes(spec: ReadSideSpec) -> LaneRunner:
    """The `elsewhere` of `projections.replay.rebuild`: lanes in worker processes."""

    def start(workers: int) -> ProcessLanes:
        return ProcessLanes(spec, workers)

    return start
