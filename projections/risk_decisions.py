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
# What `handle` reads: an approval event also carries the whole command, which is most of
# what decoding the log's commonest event costs, and nothing this model shows.
_FIELDS = {
    "RiskDesk.CommandApproved": frozenset({"timestamp", "approval"}),
    "RiskDesk.CommandRejected": frozenset(
        {"timestamp", "command_type", "target_id", "guard", "observed", "limit", "reason"}
    ),
}
_CHANGE_FIELDS = frozenset({"timestamp", "reason", "by"})


class RiskDecisionsProjection:
    name = "risk_decisions"
    version = 1
    handling_cost = 1.25  # per event, for splitting a rebuild (projections.lanes)
    tables: tuple[TableSpec, ...] = (DECISIONS,)

    def wants(self, kind: str) -> bool:
        return kind in _DECISIONS

    def fields(self, kind: str) -> frozenset[str] | None:
        return _FIELDS.get(kind, _CHANGE_FIELDS)

    def handle(self, event: LoggedEvent, rows: Rows) -> None:
        if not self.wants(event.kind):
            return
        s = event.state
        row: dict[str, Any] = dict.fromkeys(DECISIONS.columns)
        row["position"] = event.position
        row["at"] = event.at
        if event.kind == "RiskDesk.CommandApproved":
            approval = s["approval"]
            row["decision"] = "APPROVED"
            row["command_type"] = approval["command_type"]
            row["target_id"] = approval["target_id"]
            row["approval_id"] = approval["approval_id"]
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
