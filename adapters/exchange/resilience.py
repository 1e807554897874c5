"""Small resilience parts for venue calls: a token bucket, capped backoff, a circuit breaker.

Each takes its clock (monotonic seconds) and sleep function, so tests drive time by hand.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

Monotonic = Callable[[], float]
Sleep = Callable[[float], None]

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class TokenBucket:
    """At most `rate` calls a second on average, bursts up to `capacity`; callers wait."""

    def __init__(self, rate: float, capacity: float, clock: Monotonic, sleep: Sleep) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("a token bucket needs rate > 0 and capacity >= 1")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._sleep = sleep
        self._tokens = capacity
        self._at = clock()
        self._lock = threading.Lock()
        self.waited = 0.0  # seconds spent waiting, for metrics and tests

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def try_acquire(self, cost: float = 1.0) -> bool:
        with self._lock:
            self._refill()
            if self._tokens >= cost:
                self._tokens -= cost
                return True
            return False

    def acquire(self, cost: float = 1.0) -> float:
        """Take `cost` tokens, sleeping until they are there; returns the seconds waited."""
        if cost > self.capacity:
            raise ValueError(f"cost {cost} exceeds the bucket's capacity {self.capacity}")
        waited = 0.0
        while True:
            with self._lock:
                self._refill()
                if self._tokens >= cost:
                    self._tokens -= cost
                    self.waited += waited
                    return waited
                delay = (cost - self._tokens) / self.rate
            self._sleep(delay)
            waited += delay


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with full jitter: uniform(0, min(cap, base * 2**attempt))."""

    base: float
    cap: float
    rng: random.Random

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (0 for the first retry)."""
        return self.rng.uniform(0, min(self.cap, self.base * 2**attempt))


class CircuitOpen(Exception):
    """The breaker is open: fail fast instead of calling the venue."""

    def __init__(self, name: str, retry_in: float) -> None:
        super().__init__(f"circuit for {name} is open; next probe in {retry_in:.1f}s")
        self.name = name
        self.retry_in = retry_in


class CircuitBreaker:
    """closed → open after `threshold` consecutive failures → half-open after `cooldown`.

    Half-open lets one probe through at a time: success closes the circuit, failure opens
    it again for another cooldown. `on_change(old, new)` is told of every transition
    (the gateway raises an alert when the circuit opens).
    """

    def __init__(
        self,
        name: str,
        *,
        threshold: int,
        cooldown: float,
        clock: Monotonic,
        on_change: Callable[[str, str], None] | None = None,
    ) -> None:
        if threshold < 1 or cooldown <= 0:
            raise ValueError("a circuit breaker needs threshold >= 1 and cooldown > 0")
        self.name = name
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self.state = CLOSED
        self.failures = 0
        self._opened_at = 0.0
        self._probing = False

    def before_call(self) -> None:
        """Raise CircuitOpen unless a call may go to the venue now."""
        with self._lock:
            if self.state == CLOSED:
                return
            if self.state == OPEN:
                remaining = self._opened_at + self.cooldown - self._clock()
                if remaining > 0:
                    raise CircuitOpen(self.name, remaining)
                self._move(HALF_OPEN)
            if self._probing:  # half-open: one probe at a time
                raise CircuitOpen(self.name, 0.0)
            self._probing = True

    def record_success(self) -> None:
        with self._lock:
            self.failures = 0
            self._probing = False
            if self.state != CLOSED:
                self._move(CLOSED)

    def record_failure(self) -> None:
        with self._lock:
            self._probing = False
            self.failures += 1
            if self.state == HALF_OPEN or (
                self.state == CLOSED and self.failures >= self.threshold
            ):
                self._opened_at = self._clock()
                self._move(OPEN)

    def _move(self, new: str) -> None:
        old, self.state = self.state, new
        if self._on_change is not None and old != new:
            self._on_change(old, new)
