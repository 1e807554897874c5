"""Reconciliation policy: how far a venue may differ from the log, recorded in the log.

The tolerances and the instrument → asset mapping are events, not configuration read by
the projection, so a rebuild judges every snapshot by the policy in force when it was
taken, and an auditor sees which tolerance decided each verdict.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from domain.base import AISAggregate
from domain.errors import InvalidCommand
from domain.values import to_decimal

MATCHED, DRIFT, BREAK = "MATCHED", "DRIFT", "BREAK"
# What may be done about an order item, named by the projection, done by the service.
LOOKUP, CANCEL_AT_VENUE, UNKNOWN_ORDER, APPLY_FILLS = (
    "lookup",
    "cancel_at_venue",
    "unknown_order",
    "apply_fills",
)
_SEVERITY = {MATCHED: 0, DRIFT: 1, BREAK: 2}
MARKETS = ("spot", "swap")
# What a snapshot is judged against. LOG: what the log says we hold (session funding,
# fills, our open orders): live. BASELINE: the account as the snapshot flagged `baseline`
# showed it: shadow, where the real account is only read and our orders and fills are
# the paper venue's, so anything that moves the real account was done outside AIS.
EXPECT_LOG, EXPECT_BASELINE = "log", "baseline"
EXPECTS = (EXPECT_LOG, EXPECT_BASELINE)
_NS = uuid5(NAMESPACE_URL, "ais:reconciliation-policy")
ZERO = Decimal(0)


def worst(statuses: Iterable[str]) -> str:
    return max(statuses, key=_SEVERITY.__getitem__, default=MATCHED)


@dataclass(frozen=True)
class Tolerance:
    """|difference| ≤ matched → MATCHED; ≤ drift → DRIFT; beyond → BREAK."""

    matched: Decimal
    drift: Decimal

    def __post_init__(self) -> None:
        if self.matched < 0 or self.drift < self.matched:
            raise InvalidCommand(f"tolerance needs 0 <= matched <= drift, got {self}")

    def classify(self, difference: Decimal) -> str:
        size = abs(difference)
        if size <= self.matched:
            return MATCHED
        return DRIFT if size <= self.drift else BREAK

    def to_dict(self) -> dict[str, str]:
        return {"matched": str(self.matched), "drift": str(self.drift)}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Tolerance:
        return Tolerance(to_decimal(data["matched"], "matched"), to_decimal(data["drift"], "drift"))


EXACT = Tolerance(ZERO, ZERO)


@dataclass(frozen=True)
class Policy:
    """Per venue: its market kind, what each instrument is made of, tolerances per asset."""

    market: str = "spot"  # "spot": holdings are asset balances; "swap": positions + margin
    cash_asset: str = "USDT"  # the quote currency the sessions' cash is in
    instruments: dict[str, tuple[str, str]] = field(default_factory=dict)  # → (base, quote)
    tolerances: dict[str, Tolerance] = field(default_factory=dict)
    default: Tolerance = EXACT
    ignore_assets: tuple[str, ...] = ()
    expect: str = EXPECT_LOG  # EXPECT_LOG | EXPECT_BASELINE

    def __post_init__(self) -> None:
        if self.market not in MARKETS:
            raise InvalidCommand(f"market must be one of {', '.join(MARKETS)}, got {self.market!r}")
        if self.expect not in EXPECTS:
            raise InvalidCommand(f"expect must be one of {', '.join(EXPECTS)}, got {self.expect!r}")

    def tolerance(self, asset: str) -> Tolerance:
        return self.tolerances.get(asset, self.default)

    def assets_of(self, instrument: str) -> tuple[str, str]:
        """Base and quote; an instrument the policy does not name splits on '-'."""
        known = self.instruments.get(instrument)
        if known is not None:
            return known
        base, _, quote = instrument.partition("-")
        return base, quote

    def to_dict(self) -> dict[str, Any]:
        return {
            "market": self.market,
            "cash_asset": self.cash_asset,
            "instruments": {k: [b, q] for k, (b, q) in sorted(self.instruments.items())},
            "tolerances": {k: t.to_dict() for k, t in sorted(self.tolerances.items())},
            "default": self.default.to_dict(),
            "ignore_assets": sorted(self.ignore_assets),
            "expect": self.expect,
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Policy:
        return Policy(
            market=data["market"],
            cash_asset=data["cash_asset"],
            instruments={k: (v[0], v[1]) for k, v in data["instruments"].items()},
            tolerances={k: Tolerance.from_dict(v) for k, v in data["tolerances"].items()},
            default=Tolerance.from_dict(data["default"]),
            ignore_assets=tuple(data["ignore_assets"]),
            expect=data.get("expect", EXPECT_LOG),  # policies recorded before shadow's
        )


def policy_id(account_id: str, venue: str) -> UUID:
    return uuid5(_NS, f"{account_id}|{venue}")


class ReconciliationPolicy(AISAggregate):
    """Configuration as events: like the desk's limits, recorded when it changes."""

    @event("Set")
    def __init__(self, id: UUID, account_id: str, venue: str, policy: dict[str, Any]) -> None:
        self.account_id = account_id
        self.venue = venue
        self.policy = policy

    def change(self, policy: Policy) -> bool:
        data = policy.to_dict()
        if data == self.policy:
            return False
        self._changed(venue=self.venue, policy=data)
        return True

    @event("Changed")
    def _changed(self, venue: str, policy: dict[str, Any]) -> None:
        self.policy = policy
