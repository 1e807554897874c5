"""Lanes of a rebuild in other processes, forked from this one (on Linux).

Each worker opens the log and the read store itself, runs `rebuild_lane` for its
projections and sends back their digests; its progress is one shared integer. Lanes
share no tables and each commits its own tracking, so a lane that fails, or a worker
that is killed, leaves every read model at a tracked position a projector can carry on
from; the rebuild then fails with the lane's error, never waits for it forever.

Why fork: a forked worker is ready in milliseconds with every module already imported;
a fresh interpreter (`spawn`) took 0.25 to 0.7 s to import them, a tenth of a rebuild of
100k events. It is safe here because a worker opens its own engine and connections and
never touches the ones it inherits: they are idle at the fork (a rebuild forks before
its lanes read), and the worker ends with `os._exit`, as every forked multiprocessing
child does, so it does not close them under this process either. Where fork is not the
platform's safe default (macOS, Windows) the workers are spawned.
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
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


def _lane_worker(jobs: Connection, reached: Any, slot: int) -> None:
    """A worker: wait for its lane (None: not needed), run it, send the outcome back."""
    job = jobs.recv()
    if job is None:
        return
    spec, names, counts, stop = job

    def progress(position: int, _head: int) -> None:
        reached[slot] = position

    try:
        source, store = spec.open()
        try:
            outcome: tuple[str, Any] = (
                "done",
                rebuild_lane(source, store, select(names), counts, stop, progress),
            )
        finally:
            store.close()
            source.close()
    except Exception as exc:  # sent to the parent, which raises it
        outcome = ("failed", exc)
    try:
        jobs.send(outcome)
    except Exception:  # the error itself would not pickle: its text will do
        jobs.send(("failed", RuntimeError(f"{type(outcome[1]).__name__}: {outcome[1]}")))


class ProcessLanes:
    """Worker processes for lanes, started on construction, given lanes by `start`."""

    def __init__(self, spec: ReadSideSpec, workers: int) -> None:
        context = (
            multiprocessing.get_context("fork")
            if sys.platform == "linux"
            else multiprocessing.get_context("spawn")
        )
        self.spec = spec
        self.stop = 0
        self._reached = context.Array("q", workers, lock=False)
        self._workers: list[tuple[BaseProcess, Connection]] = []
        for slot in range(workers):
            mine, theirs = context.Pipe()
            process = context.Process(
                target=_lane_worker,
                args=(theirs, self._reached, slot),
                name=f"ais-rebuild-lane-{slot + 1}",
                daemon=True,
            )
            process.start()
            theirs.close()
            self._workers.append((process, mine))
        self._busy: list[int] = []

    def start(self, lanes: list[list[Projection]], counts: Mapping[str, int], stop: int) -> None:
        """One lane per worker (a plan may have fewer lanes than there are workers)."""
        if len(lanes) > len(self._workers):
            raise ValueError(f"{len(lanes)} lanes for {len(self._workers)} workers")
        self.stop = stop
        idle = len(self._workers) - len(lanes)
        self._reached[:] = [0] * len(lanes) + [stop] * idle  # an idle worker is done
        self._busy = list(range(len(lanes)))
        for slot, (_, jobs) in enumerate(self._workers):
            lane = [p.name for p in lanes[slot]] if slot < len(lanes) else None
            with suppress(BrokenPipeError):  # a worker already gone: `wait` says so
                jobs.send(None if lane is None else (self.spec, lane, dict(counts), stop))

    def reached(self) -> int:
        return int(min(self._reached))

    def wait(self, progress: Progress | None) -> dict[str, str]:
        """Their digests once all are done; the first failed lane's error if one fails."""
        digests: dict[str, str] = {}
        try:
            pending = set(self._busy)
            while pending:
                for slot in sorted(pending):
                    process, jobs = self._workers[slot]
                    if not jobs.poll() and process.is_alive():
                        continue
                    try:
                        status, value = jobs.recv()
                    except EOFError:  # it died without a word
                        process.join()
                        raise RuntimeError(
                            f"{process.name} ended (exit code {process.exitcode}) "
                            "before its lane was rebuilt"
                        ) from None
                    if status == "failed":
                        raise value
                    digests.update(value)
                    pending.discard(slot)
                if progress is not None:
                    progress(self.reached(), self.stop)
                if pending:  # wait for an answer, a worker's end, or the time to report
                    waits: list[Connection | int] = [self._workers[s][1] for s in pending]
                    waits += [self._workers[s][0].sentinel for s in pending]
                    wait(waits, _POLL_SECONDS)
            return digests
        finally:
            self.cancel()

    def cancel(self) -> None:
        """Stop the workers (a lane's last batch is rolled back, as after a crash)."""
        for process, jobs in self._workers:
            if process.is_alive():
                process.kill()
            process.join()
            jobs.close()


def process_lanes(spec: ReadSideSpec) -> LaneRunner:
    """The `elsewhere` of `projections.replay.rebuild`: lanes in worker processes."""

    def start(workers: int) -> ProcessLanes:
        return ProcessLanes(spec, workers)

    return start
