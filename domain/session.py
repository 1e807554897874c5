"""TradingSession aggregate: one run of the trading loop in one mode."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.approval import ApprovalToken, Verifier
from domain.base import AISAggregate
from domain.commands import Command, EndSession, HaltSession, ResumeSession, StartSession
from domain.errors import IllegalTransition

ACTIVE, HALTED, ENDED = "ACTIVE", "HALTED", "ENDED"

TRANSITIONS: dict[str, frozenset[str]] = {
    "HaltSession": frozenset({ACTIVE}),
    "ResumeSession": frozenset({HALTED}),
    "EndSession": frozenset({ACTIVE, HALTED}),
}


class TradingSession(AISAggregate):
    @staticmethod
    def start(command: StartSession, token: ApprovalToken, verifier: Verifier) -> TradingSession:
        verifier.verify(token, command, None)
        return TradingSession(
            id=command.session_id,
            mode=command.mode.value,
            starting_capital=command.starting_capital,
            config_digest=command.config_digest,
            approval=token.to_dict(),
        )

    @event("Started")
    def __init__(
        self,
        id: UUID,
        mode: str,
        starting_capital: Decimal,
        config_digest: str,
        approval: dict[str, Any],
    ) -> None:
        self.mode = mode
        self.starting_capital = starting_capital
        self.config_digest = config_digest
        self.status = ACTIVE
        self.reasons: list[str] = []

    def check(self, command: Command) -> None:
        allowed = TRANSITIONS.get(command.command_type)
        if allowed is None:
            raise IllegalTransition(f"{command.command_type} does not apply to a session")
        if self.status not in allowed:
            raise IllegalTransition(
                f"session {self.id} is {self.status}; {command.command_type} needs "
                f"{' or '.join(sorted(allowed))}"
            )

    def execute(self, command: Command, token: ApprovalToken, verifier: Verifier) -> None:
        verifier.verify(token, command, self.version)
        self.check(command)
        assert isinstance(command, HaltSession | ResumeSession | EndSession)
        status = {"HaltSession": HALTED, "ResumeSession": ACTIVE, "EndSession": ENDED}
        self._changed(
            status=status[command.command_type], reason=command.reason, approval=token.to_dict()
        )

    @event("StatusChanged")
    def _changed(self, status: str, reason: str, approval: dict[str, Any]) -> None:
        self.status = status
        self.reasons.append(reason)
