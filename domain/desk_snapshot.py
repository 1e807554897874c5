"""RiskDesk snapshots: the desk's state as plain values and back, so a load stays O(1).

The library's default snapshot stores `vars(desk)` through the JSON transcoder, which
would lose types on the way back: RiskLimits, Mark and OpenOrder would return as bare
dicts, an open order's Side as a plain string, the recent (time, intent) pairs as lists.
This snapshot converts those attributes explicitly; the others are already values the
transcoder round-trips (str, int, Decimal, datetime, dicts of them).

Snapshots live in their own table and are not notifications: projections, the audit
export and its seal read notifications only, so they never see one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from eventsourcing.domain import BaseAggregate, Snapshot

from domain.book import Mark, OpenOrder
from domain.limits import RiskLimits
from domain.values import Side


def _same(value: Any) -> Any:
    return value


def _open_order(data: dict[str, Any]) -> OpenOrder:
    return OpenOrder(
        instrument=data["instrument"],
        side=Side(data["side"]),
        remaining=data["remaining"],
        price=data["price"],
        increasing=data["increasing"],
    )


_ENCODE: dict[str, Callable[[Any], Any]] = {
    "limits": lambda limits: limits.to_dict(),
    "marks": lambda marks: {k: {"price": m.price, "at": m.at} for k, m in marks.items()},
    "open_orders": lambda orders: {
        k: {**dataclasses.asdict(o), "side": o.side.value} for k, o in orders.items()
    },
    "recent_orders": lambda recent: [[at, intent] for at, intent in recent],
}
_DECODE: dict[str, Callable[[Any], Any]] = {
    "limits": RiskLimits.from_dict,
    "marks": lambda marks: {k: Mark(m["price"], m["at"]) for k, m in marks.items()},
    "open_orders": lambda orders: {k: _open_order(o) for k, o in orders.items()},
    "recent_orders": lambda recent: [(at, intent) for at, intent in recent],
}


class DeskSnapshot(Snapshot):
    """The RiskDesk's snapshot class (its `Snapshot` attribute)."""

    @classmethod
    def take(cls, aggregate: Any) -> DeskSnapshot:
        taken = super().take(aggregate)
        state = {k: _ENCODE.get(k, _same)(v) for k, v in taken.state.items()}
        return dataclasses.replace(taken, state=state)

    def mutate(self, _: None) -> BaseAggregate[Any]:
        state = {k: _DECODE.get(k, _same)(v) for k, v in self.state.items()}
        return Snapshot.mutate(dataclasses.replace(self, state=state), None)
