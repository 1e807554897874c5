"""Clocks and id factories: the only places that read the wall clock or randomness."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4


def system_clock() -> datetime:
    return datetime.now(UTC)


class SimulatedClock:
    """A clock that moves only when told to: backtests and tests replay exactly."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the simulated clock needs a timezone-aware start")
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def set(self, moment: datetime) -> None:
        self.now = moment


class SeededIds:
    """Reproducible version-4 UUIDs from a seed."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def __call__(self) -> UUID:
        return UUID(int=self._random.getrandbits(128), version=4)


def random_ids() -> UUID:
    return uuid4()
