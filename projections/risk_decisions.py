"""Risk decisions: every approval, rejection and kill-switch change, with its reasons."""

from __future__ import annotations

from typing import Any

from projections.spec import LoggedEvent, Rows, TableSpec

DECISIONS = TableSpec(
    "risk_decisions",
    (
        "position",
        "at",
        "decision",
        "command_type",
        "target_id",
        "approval_id",
        "guard",
        "observed",
        "limit_value",
        "reason",
        "actor",
    ),
    ("position",),
    ("position",),
)
_STATE_CHANGES = {
    "RiskDesk.KillSwitchEngaged": "KILL_SWITCH_ENGAGED",
    "RiskDesk.KillSwitchReset": "KILL_SWITCH_RESET",
    "RiskDesk.ReducingEntered": "REDUCING",
    "RiskDesk.LimitsChanged": "LIMITS_CHANGED",
}
_DECISIONS = frozenset({"RiskDesk.CommandApproved", "RiskDesk.CommandRejected", *_STATE_CHANGES})


class RiskDecisionsProjection:
    name = "risk_decisions"
    version = 1
    tables: tuple[TableSpec, ...] = (DECISIONS,)

    def wants(self, kind: str) -> bool:
        return kind in _DECISIONS

    def handle(self, event: LoggedEvent, rows: Rows) -> None:
        if not self.wants(event.kind):
            return
        s = event.state
        row: dict[str, Any] = dict.fromkeys(DECISIONS.columns)
        row.update(position=event.position, at=event.at)
        if event.kind == "RiskDesk.CommandApproved":
            approval = s["approval"]
            row.update(
                decision="APPROVED",
                command_type=approval["command_type"],
                target_id=approval["target_id"],
                approval_id=approval["approval_id"],
            )
        elif event.kind == "RiskDesk.CommandRejected":
            row.update(
                decision="REJECTED",
                command_type=s["command_type"],
                target_id=str(s["target_id"]),
                guard=s["guard"],
                observed=s["observed"],
                limit_value=s["limit"],
                reason=s["reason"],
            )
        else:
            row.update(
                decision=_STATE_CHANGES[event.kind], reason=s.get("reason"), actor=s.get("by")
            )
        rows.put("risk_decisions", row)
