"""SignalInbox: external signals (TradingView-style webhooks) recorded as events.

A signal is an observation, not a command: it changes no order, position or limit, so it
needs no risk approval. Agents may read recent ones as extra inputs; whatever they then
propose still goes through the RiskDesk. One inbox per account (`inbox_id`).

The inbox remembers each signal's id for `REPLAY_MEMORY` after its sending time, so a
replayed request inside the caller's replay window is refused as a duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from domain.base import AISAggregate
from domain.errors import DomainError
from domain.values import check_text

DIRECTIONS = ("long", "short", "flat")
REPLAY_MEMORY = timedelta(minutes=10)


def inbox_id(account_id: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"ais:signal-inbox:{account_id}")


class DuplicateSignal(DomainError):
    """This signal id was already received (a replay)."""


@dataclass(frozen=True)
class ExternalSignal:
    signal_id: str
    instrument: str
    direction: str
    confidence: Decimal
    expected_return: Decimal | None
    reason: str
    source: str
    sent_at: datetime


class SignalInbox(AISAggregate):
    @event("Opened")
    def __init__(self, id: UUID, account_id: str) -> None:
        self.account_id = account_id
        self.seen: dict[str, datetime] = {}  # signal id -> sent_at, kept REPLAY_MEMORY
        self.recent: list[ExternalSignal] = []

    def has_seen(self, signal_id: str) -> bool:
        return signal_id in self.seen

    def receive(
        self,
        signal_id: str,
        instrument: str,
        direction: str,
        confidence: Decimal,
        expected_return: Decimal | None,
        reason: str,
        source: str,
        sent_at: datetime,
    ) -> None:
        if direction not in DIRECTIONS:
            raise DomainError(f"direction must be one of {', '.join(DIRECTIONS)}")
        for name, text in (("id", signal_id), ("instrument", instrument), ("reason", reason)):
            check_text(text, name)
        if not Decimal(0) <= confidence <= Decimal(1):
            raise DomainError(f"confidence must be between 0 and 1, got {confidence}")
        if self.has_seen(signal_id):
            raise DuplicateSignal(f"signal {signal_id!r} was already received")
        self._received(
            signal_id=signal_id,
            instrument=instrument,
            direction=direction,
            confidence=confidence,
            expected_return=expected_return,
            reason=reason,
            source=source,
            sent_at=sent_at,
        )

    @event("SignalReceived")
    def _received(
        self,
        signal_id: str,
        instrument: str,
        direction: str,
        confidence: Decimal,
        expected_return: Decimal | None,
        reason: str,
        source: str,
        sent_at: datetime,
    ) -> None:
        horizon = sent_at - REPLAY_MEMORY
        self.seen = {k: v for k, v in self.seen.items() if v >= horizon}
        self.seen[signal_id] = sent_at
        signal = ExternalSignal(
            signal_id,
            instrument,
            direction,
            confidence,
            expected_return,
            reason,
            source,
            sent_at,
        )
        self.recent = [s for s in self.recent if s.sent_at >= horizon] + [signal]
