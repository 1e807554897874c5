"""Signals: what a strategy agent proposes, before arbitration and risk see it."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from domain.errors import InvalidCommand

LONG, SHORT, FLAT = 1, -1, 0


@dataclass(frozen=True)
class Signal:
    """A view on one instrument: direction, how sure, how much, for how long, and why."""

    agent: str
    instrument: str
    direction: int  # LONG, SHORT or FLAT
    confidence: Decimal  # 0..1
    expected_return: Decimal  # fraction over the horizon, e.g. 0.004 = +0.4 %
    horizon_bars: int
    reason: str

    def __post_init__(self) -> None:
        if self.direction not in (LONG, SHORT, FLAT):
            raise InvalidCommand(f"direction must be -1, 0 or 1, got {self.direction}")
        if not Decimal(0) <= self.confidence <= Decimal(1):
            raise InvalidCommand(f"confidence must be within 0..1, got {self.confidence}")
        if self.horizon_bars <= 0:
            raise InvalidCommand("horizon_bars must be positive")
        if not self.reason.strip():
            raise InvalidCommand("a signal needs a reason")

    def to_dict(self) -> dict[str, str | int]:
        return {
            "agent": self.agent,
            "instrument": self.instrument,
            "direction": self.direction,
            "confidence": str(self.confidence),
            "expected_return": str(self.expected_return),
            "horizon_bars": self.horizon_bars,
            "reason": self.reason,
        }
