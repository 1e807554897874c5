"""Record external signals in the account's SignalInbox and read recent ones back.

Works on any eventsourcing `Application` (the TradingApp in practice). Signals are
observations: no RiskDesk approval; the events are stamped with the app's clock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError

from application.errors import ConcurrencyConflict
from domain.base import event_clock
from domain.signal_inbox import ExternalSignal, SignalInbox, inbox_id
from domain.signals import FLAT, LONG, SHORT, Signal

ATTEMPTS = 3
EXTERNAL_AGENT = "webhook"


def _inbox(app: Application[UUID], account_id: str) -> SignalInbox:
    try:
        inbox: object = app.repository.get(inbox_id(account_id))
    except AggregateNotFoundError:
        return SignalInbox(id=inbox_id(account_id), account_id=account_id)
    assert isinstance(inbox, SignalInbox)
    return inbox


def record_signal(
    app: Application[UUID],
    clock: Callable[[], datetime],
    account_id: str,
    **signal: Any,
) -> int:
    """Append `SignalInbox.SignalReceived`; returns the log position it is at.

    Raises `DuplicateSignal` for an id already received, `DomainError` for bad values,
    `ConcurrencyConflict` if other writers keep winning the race.
    """
    for _ in range(ATTEMPTS):
        with event_clock(clock):
            inbox = _inbox(app, account_id)
            inbox.receive(**signal)
            try:
                recordings = app.save(inbox)
            except IntegrityError:
                continue
        positions = [r.notification.id for r in recordings]
        return max(positions) if positions else app.recorder.max_notification_id() or 0
    raise ConcurrencyConflict("the signal inbox kept changing under this write; retry")


def recent_signals(
    app: Application[UUID], account_id: str, now: datetime, max_age: timedelta
) -> list[ExternalSignal]:
    """Signals sent within `max_age` before `now` (and not after it), oldest first."""
    try:
        inbox: object = app.repository.get(inbox_id(account_id))
    except AggregateNotFoundError:
        return []
    assert isinstance(inbox, SignalInbox)
    return [s for s in inbox.recent if now - max_age <= s.sent_at <= now]


def as_agent_signal(signal: ExternalSignal, horizon_bars: int = 1) -> Signal:
    """An external signal as one more agent's view (agent `webhook`), for arbitration."""
    return Signal(
        agent=EXTERNAL_AGENT,
        instrument=signal.instrument,
        direction={"long": LONG, "short": SHORT, "flat": FLAT}[signal.direction],
        confidence=signal.confidence,
        expected_return=signal.expected_return or Decimal(0),
        horizon_bars=horizon_bars,
        reason=f"external: {signal.reason} ({signal.source} {signal.signal_id})",
    )


def signal_source(
    app: Application[UUID],
    account_id: str,
    clock: Callable[[], datetime],
    max_age: timedelta,
    horizon_bars: int = 1,
) -> Callable[[], list[Signal]]:
    """For `TradingLoop(signal_source=...)`: the recent external signals at the clock's
    now, as agent signals that the loop's decide() adds to its agents' signals."""
    return lambda: [
        as_agent_signal(s, horizon_bars) for s in recent_signals(app, account_id, clock(), max_age)
    ]


__all__ = ["as_agent_signal", "recent_signals", "record_signal", "signal_source"]
