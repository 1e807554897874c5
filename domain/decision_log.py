"""DecisionLog: why every order exists — the inputs and outputs of each trading cycle.

Observations, not state changes of orders or positions, so no approval is needed; an
auditor reads signals, scores, targets and the orders they led to from these events.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from domain.base import AISAggregate

_NS = uuid5(NAMESPACE_URL, "ais:decision-log")


def decision_log_id(session_id: UUID) -> UUID:
    return uuid5(_NS, str(session_id))


class DecisionLog(AISAggregate):
    @event("Opened")
    def __init__(self, id: UUID, session_id: UUID, weights: dict[str, Decimal]) -> None:
        self.session_id = session_id
        self.weights = dict(weights)
        self.cycles = 0

    @event("CycleDecided")
    def record_cycle(
        self,
        at: datetime,
        signals: list[dict[str, Any]],
        regime: dict[str, Any],
        scores: dict[str, Decimal],
        targets: dict[str, Decimal],
        orders: list[dict[str, Any]],
    ) -> None:
        self.cycles += 1

    @event("WeightsAdapted")
    def adapt_weights(
        self, at: datetime, weights: dict[str, Decimal], evidence: dict[str, Any]
    ) -> None:
        self.weights = dict(weights)
