"""Order aggregate: the state machine of one order, changed only by approved commands."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.approval import ApprovalToken, Verifier
from domain.base import AISAggregate
from domain.commands import (
    AcknowledgeOrder,
    CancelOrder,
    Command,
    ExpireOrder,
    PlaceOrder,
    RecordFill,
    RejectOrder,
    SubmitOrder,
)
from domain.errors import DuplicateFill, IllegalTransition

PENDING_NEW, SUBMITTED, OPEN = "PENDING_NEW", "SUBMITTED", "OPEN"
PARTIALLY_FILLED, FILLED = "PARTIALLY_FILLED", "FILLED"
CANCELED, REJECTED, EXPIRED = "CANCELED", "REJECTED", "EXPIRED"
TERMINAL = frozenset({FILLED, CANCELED, REJECTED, EXPIRED})

# command type -> states it may leave from. Fills are facts and handled separately.
TRANSITIONS: dict[str, frozenset[str]] = {
    "SubmitOrder": frozenset({PENDING_NEW}),
    "AcknowledgeOrder": frozenset({SUBMITTED}),
    "CancelOrder": frozenset({PENDING_NEW, SUBMITTED, OPEN, PARTIALLY_FILLED}),
    "RejectOrder": frozenset({PENDING_NEW, SUBMITTED}),
    "ExpireOrder": frozenset({SUBMITTED, OPEN, PARTIALLY_FILLED}),
}


class Order(AISAggregate):
    @staticmethod
    def place(command: PlaceOrder, token: ApprovalToken, verifier: Verifier) -> Order:
        verifier.verify(token, command, None)
        return Order(
            id=command.order_id,
            session_id=command.session_id,
            instrument=command.instrument,
            side=command.side.value,
            order_type=command.order_type.value,
            quantity=command.quantity,
            limit_price=command.limit_price,
            reduce_only=command.reduce_only,
            approval=token.to_dict(),
        )

    @event("Placed")
    def __init__(
        self,
        id: UUID,
        session_id: UUID,
        instrument: str,
        side: str,
        order_type: str,
        quantity: Decimal,
        limit_price: Decimal | None,
        reduce_only: bool,
        approval: dict[str, Any],
    ) -> None:
        self.session_id = session_id
        self.instrument = instrument
        self.side = side
        self.order_type = order_type
        self.quantity = quantity
        self.limit_price = limit_price
        self.reduce_only = reduce_only
        self.status = PENDING_NEW
        self.client_order_id: str | None = None
        self.exchange_order_id: str | None = None
        self.filled_quantity = Decimal(0)
        self.notional_filled = Decimal(0)
        self.fees = Decimal(0)
        self.trade_ids: list[str] = []
        self.anomalies: list[str] = []
        self.approval_ids = [approval["approval_id"]]
        self.end_reason: str | None = None

    @property
    def average_price(self) -> Decimal | None:
        if self.filled_quantity == 0:
            return None
        return self.notional_filled / self.filled_quantity

    @property
    def remaining(self) -> Decimal:
        return max(self.quantity - self.filled_quantity, Decimal(0))

    def check(self, command: Command) -> None:
        """Refuse an illegal transition before approval is even asked for."""
        if isinstance(command, RecordFill):
            if command.trade_id in self.trade_ids:
                raise DuplicateFill(f"trade {command.trade_id} already applied to {self.id}")
            return
        allowed = TRANSITIONS.get(command.command_type)
        if allowed is None:
            raise IllegalTransition(f"{command.command_type} does not apply to an Order")
        if self.status not in allowed:
            raise IllegalTransition(
                f"order {self.id} is {self.status}; {command.command_type} needs "
                f"{' or '.join(sorted(allowed))}"
            )

    def execute(self, command: Command, token: ApprovalToken, verifier: Verifier) -> None:
        verifier.verify(token, command, self.version)
        self.check(command)
        approval = token.to_dict()
        if isinstance(command, SubmitOrder):
            self._submitted(client_order_id=command.client_order_id, approval=approval)
        elif isinstance(command, AcknowledgeOrder):
            self._acknowledged(exchange_order_id=command.exchange_order_id, approval=approval)
        elif isinstance(command, CancelOrder):
            self._canceled(reason=command.reason, approval=approval)
        elif isinstance(command, RejectOrder):
            self._rejected(reason=command.reason, approval=approval)
        elif isinstance(command, ExpireOrder):
            self._expired(reason=command.reason, approval=approval)
        elif isinstance(command, RecordFill):
            self._record_fill(command, approval)
        else:  # pragma: no cover - check() refuses anything else
            raise IllegalTransition(f"{command.command_type} does not apply to an Order")

    def _record_fill(self, command: RecordFill, approval: dict[str, Any]) -> None:
        """Fills are facts: an anomalous one is still recorded, flagged, never dropped."""
        anomaly = None
        if self.status in TERMINAL:
            anomaly = f"fill on a {self.status} order"
        elif self.filled_quantity + command.quantity > self.quantity:
            anomaly = f"over-fill: {self.filled_quantity + command.quantity} > {self.quantity}"
        self._filled(
            trade_id=command.trade_id,
            quantity=command.quantity,
            price=command.price,
            fee=command.fee,
            filled_at=command.filled_at.isoformat(),
            anomaly=anomaly,
            approval=approval,
        )

    def _note(self, approval: dict[str, Any]) -> None:
        self.approval_ids.append(approval["approval_id"])

    @event("Submitted")
    def _submitted(self, client_order_id: str, approval: dict[str, Any]) -> None:
        self.client_order_id = client_order_id
        self.status = SUBMITTED
        self._note(approval)

    @event("Acknowledged")
    def _acknowledged(self, exchange_order_id: str, approval: dict[str, Any]) -> None:
        self.exchange_order_id = exchange_order_id
        self.status = OPEN
        self._note(approval)

    @event("Canceled")
    def _canceled(self, reason: str, approval: dict[str, Any]) -> None:
        self.status = CANCELED
        self.end_reason = reason
        self._note(approval)

    @event("Rejected")
    def _rejected(self, reason: str, approval: dict[str, Any]) -> None:
        self.status = REJECTED
        self.end_reason = reason
        self._note(approval)

    @event("Expired")
    def _expired(self, reason: str, approval: dict[str, Any]) -> None:
        self.status = EXPIRED
        self.end_reason = reason
        self._note(approval)

    @event("Filled")
    def _filled(
        self,
        trade_id: str,
        quantity: Decimal,
        price: Decimal,
        fee: Decimal,
        filled_at: str,
        anomaly: str | None,
        approval: dict[str, Any],
    ) -> None:
        self.trade_ids.append(trade_id)
        self.filled_quantity += quantity
        self.notional_filled += quantity * price
        self.fees += fee
        self._note(approval)
        if anomaly is not None:
            self.anomalies.append(anomaly)
        elif self.filled_quantity >= self.quantity:
            self.status = FILLED
        else:
            self.status = PARTIALLY_FILLED
