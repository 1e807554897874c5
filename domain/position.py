"""Position aggregate, one per account and instrument: average-cost accounting of fills."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.approval import ApprovalToken, Verifier
from domain.base import AISAggregate
from domain.commands import ApplyFill
from domain.errors import DuplicateFill, InvalidCommand
from domain.values import Side

ZERO = Decimal(0)


@dataclass(frozen=True)
class Lot:
    """Signed quantity, average entry, realized P&L net of fees, fees paid."""

    quantity: Decimal = ZERO
    average_entry: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO


def apply_fill(lot: Lot, side: Side, quantity: Decimal, price: Decimal, fee: Decimal) -> Lot:
    """Open, add, reduce, close or flip through zero; fees reduce realized P&L."""
    signed = side.sign * quantity
    held = lot.quantity
    realized = lot.realized_pnl - fee
    if held == 0 or (held > 0) == (signed > 0):
        new_quantity = held + signed
        average = (abs(held) * lot.average_entry + quantity * price) / abs(new_quantity)
        return Lot(new_quantity, average, realized, lot.fees + fee)
    closed = min(quantity, abs(held))
    direction = 1 if held > 0 else -1
    realized += closed * (price - lot.average_entry) * direction
    new_quantity = held + signed
    if new_quantity == 0:
        average = ZERO
    elif (new_quantity > 0) == (held > 0):
        average = lot.average_entry
    else:  # flipped through zero: the remainder opened at this fill's price
        average = price
    return Lot(new_quantity, average, realized, lot.fees + fee)


class Position(AISAggregate):
    @staticmethod
    def open(command: ApplyFill, token: ApprovalToken, verifier: Verifier) -> Position:
        verifier.verify(token, command, None)
        position = Position(
            id=command.position_id, account_id=command.account_id, instrument=command.instrument
        )
        position._fill(command, token)
        return position

    @event("Opened")
    def __init__(self, id: UUID, account_id: str, instrument: str) -> None:
        self.account_id = account_id
        self.instrument = instrument
        self.lot = Lot()
        self.trade_ids: list[str] = []

    def apply(self, command: ApplyFill, token: ApprovalToken, verifier: Verifier) -> None:
        verifier.verify(token, command, self.version)
        self.check(command)
        self._fill(command, token)

    def check(self, command: ApplyFill) -> None:
        if command.instrument != self.instrument or command.account_id != self.account_id:
            raise InvalidCommand("fill is for another account or instrument")
        if command.trade_id in self.trade_ids:
            raise DuplicateFill(f"trade {command.trade_id} already applied to {self.id}")

    def _fill(self, command: ApplyFill, token: ApprovalToken) -> None:
        self._filled(
            instrument=command.instrument,
            order_id=command.order_id,
            trade_id=command.trade_id,
            side=command.side.value,
            quantity=command.quantity,
            price=command.price,
            fee=command.fee,
            approval=token.to_dict(),
        )

    @event("FillApplied")
    def _filled(
        self,
        instrument: str,
        order_id: UUID,
        trade_id: str,
        side: str,
        quantity: Decimal,
        price: Decimal,
        fee: Decimal,
        approval: dict[str, Any],
    ) -> None:
        self.lot = apply_fill(self.lot, Side(side), quantity, price, fee)
        self.trade_ids.append(trade_id)

    @property
    def quantity(self) -> Decimal:
        return self.lot.quantity
