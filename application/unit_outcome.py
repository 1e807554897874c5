"""What became of one unit of commands decided in a group, and how its caller settles it.

Settling happens in the caller's own thread (and so its logging context, which carries
the request id), after the transaction that holds the unit is committed: the log line
"command approved" is never written for something that is not on disk.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime
from uuid import UUID

from eventsourcing.persistence import Recording

from application.errors import RiskRejected
from domain.approval import ApprovalToken
from domain.commands import Command
from domain.guards import Rejection
from domain.risk_desk import RiskDesk

log = logging.getLogger("ais.trading")


@dataclasses.dataclass(frozen=True)
class UnitOutcome:
    """Tokens of an approved unit, or the error its caller gets.

    `dirty`: the unit failed after the desk recorded a decision for it, so the group
    pass that saw it is discarded and decided again without it.
    """

    tokens: list[ApprovalToken] = dataclasses.field(default_factory=list)
    error: Exception | None = None
    dirty: bool = False
    rejected: tuple[Command, Rejection] | None = None

    @classmethod
    def rejected_by_desk(
        cls, command: Command, rejection: Rejection, *, dirty: bool
    ) -> UnitOutcome:
        return cls(error=RiskRejected(rejection), dirty=dirty, rejected=(command, rejection))

    def record_on(self, desk: RiskDesk, now: datetime) -> UnitOutcome:
        """Replay a failed unit into a fresh pass: only its rejection (if any) is kept."""
        if self.rejected is not None:
            desk.record_rejection(*self.rejected, now)
        return dataclasses.replace(self, dirty=False)

    def settle(self, saved: list[Recording[UUID]]) -> list[ApprovalToken]:
        """Log what happened and hand the caller its tokens, or raise its error."""
        if self.rejected is not None:
            _log_rejected(*self.rejected, saved)
        if self.error is not None:
            raise self.error
        for token in self.tokens:
            _log_approved(token, saved)
        return self.tokens


def positions(recordings: list[Recording[UUID]]) -> list[int]:
    return [r.notification.id for r in recordings]


def _log_approved(token: ApprovalToken, saved: list[Recording[UUID]]) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    log.info(
        "command approved",
        extra={
            "command_type": token.command_type,
            "target_id": str(token.target_id),
            "approval_id": str(token.approval_id),
            "positions": positions(saved),
        },
    )


def _log_rejected(command: Command, rejection: Rejection, saved: list[Recording[UUID]]) -> None:
    log.info(
        "command rejected",
        extra={
            "command_type": command.command_type,
            "target_id": str(command.target_id),
            "guard": rejection.guard,
            "reason": rejection.reason,
            "positions": positions(saved),
        },
    )
