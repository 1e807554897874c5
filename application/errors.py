"""Application-level refusals, distinct from domain errors so callers can tell them apart."""

from __future__ import annotations

from domain.errors import DomainError
from domain.guards import Rejection


class RiskRejected(DomainError):
    """The RiskDesk said no; the rejection event is on disk, the target is untouched."""

    def __init__(self, rejection: Rejection) -> None:
        self.rejection = rejection
        super().__init__(
            f"rejected by {rejection.guard}: {rejection.reason} "
            f"(observed {rejection.observed}, limit {rejection.limit})"
        )


class ConcurrencyConflict(DomainError):
    """Another writer changed the same aggregate first; nothing of this command was saved."""


class NotFound(DomainError):
    """The command targets an aggregate that does not exist."""
