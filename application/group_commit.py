"""Group commit: concurrent callers' commands decided together and saved in one transaction.

Every command goes through the one RiskDesk aggregate, so writers in several threads
collide on its version (each loser reloads and retries), and each command pays for a
transaction of its own. A `GroupCommitter` is the single writer for a `TradingApp` in a
process: callers queue their units and wait; its thread takes whatever has queued up
(at most `max_group` units), decides the units in arrival order against one desk and
saves them with `TradingApp.execute_group`, one transaction. Each caller is answered
only after that commit: nothing is acknowledged before it is durable, and a unit is
still all or nothing with its approval. Under no load a group is one unit, so a lone
caller never waits for a batch to fill.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from uuid import UUID

from eventsourcing.persistence import Recording

from application.trading import TradingApp
from application.unit_outcome import UnitOutcome
from domain.approval import ApprovalToken
from domain.commands import Command

DEFAULT_MAX_GROUP = 64

_Settled = tuple[UnitOutcome, list[Recording[UUID]]]
_Queued = tuple[tuple[Command, ...], "Future[_Settled]"]


class GroupCommitter:
    """The one thread that writes commands for `app`; `execute` is safe from any thread."""

    def __init__(self, app: TradingApp, *, max_group: int = DEFAULT_MAX_GROUP) -> None:
        if max_group < 1:
            raise ValueError("max_group must be at least 1")
        self.app = app
        self.max_group = max_group
        self.groups = 0  # transactions written, for the benchmark and tests
        self.units = 0
        self._queue: queue.SimpleQueue[_Queued | None] = queue.SimpleQueue()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ais-group-commit", daemon=True)
        self._thread.start()

    def execute(self, *commands: Command) -> list[ApprovalToken]:
        """Like `TradingApp.execute`: returns once the unit is on disk, or raises its error."""
        if self._closed.is_set():
            raise RuntimeError("group committer is closed")
        done: Future[_Settled] = Future()
        self._queue.put((commands, done))
        outcome, saved = done.result()
        return outcome.settle(saved)

    def close(self) -> None:
        """Finish what was queued before, then stop the thread; later callers are refused."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._queue.put(None)
        self._thread.join()
        while True:  # queued by a caller that raced the close: refused, never left waiting
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item[1].set_exception(RuntimeError("group committer is closed"))

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            stop = False
            while len(group) < self.max_group:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                group.append(item)
            self._write(group)
            if stop:
                return

    def _write(self, group: list[_Queued]) -> None:
        try:
            outcomes, saved = self.app.execute_group([commands for commands, _ in group])
        except BaseException as exc:  # nothing of the group is on disk: every caller hears it
            for _, done in group:
                done.set_exception(exc)
            return
        self.groups += 1
        self.units += len(group)
        for (_, done), outcome in zip(group, outcomes, strict=True):
            done.set_result((outcome, saved))
