"""Token bucket, capped backoff with jitter and the circuit breaker, on a hand-driven clock."""

from __future__ import annotations

import random

import pytest

from adapters.exchange.resilience import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    Backoff,
    CircuitBreaker,
    CircuitOpen,
    TokenBucket,
)


class ManualClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_token_bucket_allows_a_burst_then_paces_at_the_rate() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=5, capacity=3, clock=clock, sleep=clock.sleep)
    assert [bucket.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.acquire() == pytest.approx(0.2)  # one token every 1/5 s
    assert bucket.acquire() == pytest.approx(0.2)
    assert not bucket.try_acquire()
    clock.now += 10  # idle: refills, but never beyond the capacity
    assert [bucket.try_acquire() for _ in range(4)] == [True, True, True, False]
    assert bucket.waited == pytest.approx(0.4)


def test_token_bucket_refuses_a_cost_it_can_never_hold() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=1, capacity=2, clock=clock, sleep=clock.sleep)
    with pytest.raises(ValueError):
        bucket.acquire(3)
    with pytest.raises(ValueError):
        TokenBucket(rate=0, capacity=1, clock=clock, sleep=clock.sleep)


def test_backoff_is_capped_exponential_with_full_jitter() -> None:
    backoff = Backoff(base=0.1, cap=1.0, rng=random.Random(7))
    for attempt in range(10):
        ceiling = min(1.0, 0.1 * 2**attempt)
        delays = [backoff.delay(attempt) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # jitter spreads over the whole window
    same = Backoff(base=0.1, cap=1.0, rng=random.Random(7))
    again = Backoff(base=0.1, cap=1.0, rng=random.Random(7))
    assert [same.delay(3) for _ in range(5)] == [again.delay(3) for _ in range(5)]


def test_breaker_opens_after_consecutive_failures_and_fails_fast() -> None:
    clock = ManualClock()
    changes: list[tuple[str, str]] = []
    breaker = CircuitBreaker(
        "binance",
        threshold=3,
        cooldown=30,
        clock=clock,
        on_change=lambda a, b: changes.append((a, b)),
    )
    for _ in range(2):
        breaker.before_call()
        breaker.record_failure()
    breaker.before_call()
    breaker.record_success()  # a success in between resets the count
    for _ in range(3):
        breaker.before_call()
        breaker.record_failure()
    assert breaker.state == OPEN and changes == [(CLOSED, OPEN)]
    with pytest.raises(CircuitOpen) as refused:
        breaker.before_call()
    assert refused.value.retry_in == pytest.approx(30)


def test_breaker_half_opens_one_probe_after_the_cooldown() -> None:
    clock = ManualClock()
    changes: list[tuple[str, str]] = []
    breaker = CircuitBreaker(
        "binance",
        threshold=1,
        cooldown=10,
        clock=clock,
        on_change=lambda a, b: changes.append((a, b)),
    )
    breaker.before_call()
    breaker.record_failure()
    clock.now += 9.9
    with pytest.raises(CircuitOpen):
        breaker.before_call()
    clock.now += 0.2
    breaker.before_call()  # the probe
    assert breaker.state == HALF_OPEN
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # only one probe at a time
    breaker.record_failure()  # probe failed: open again, a fresh cooldown
    assert breaker.state == OPEN
    with pytest.raises(CircuitOpen):
        breaker.before_call()
    clock.now += 10.1
    breaker.before_call()
    breaker.record_success()
    assert breaker.state == CLOSED
    breaker.before_call()  # closed: calls flow again
    assert changes == [
        (CLOSED, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, CLOSED),
    ]


def test_ccxt_calls_cannot_change_the_process_decimal_rounding() -> None:
    """ccxt's decimal_to_precision sets ROUND_HALF_UP on the thread's context; isolate it."""
    import decimal

    from ccxt.base.decimal_to_precision import ROUND, decimal_to_precision

    from adapters.exchange.ccxt_gateway import _DecimalIsolated

    class Venue:
        def round(self) -> str:
            return str(decimal_to_precision("2.5", ROUND, 0))

    before = decimal.getcontext().rounding
    assert _DecimalIsolated(Venue()).round() == "3"
    assert decimal.getcontext().rounding == before == decimal.ROUND_HALF_EVEN
