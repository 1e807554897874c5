"""Trading sessions: mode, capital, configuration digest and status over time."""

from __future__ import annotations

from projections.spec import LoggedEvent, Rows, TableSpec

SESSIONS = TableSpec(
    "sessions",
    (
        "session_id",
        "mode",
        "starting_capital",
        "config_digest",
        "status",
        "started_at",
        "updated_at",
        "last_reason",
    ),
    ("session_id",),
)


class SessionsProjection:
    name = "sessions"
    version = 1
    tables: tuple[TableSpec, ...] = (SESSIONS,)

    def wants(self, kind: str) -> bool:
        return kind.startswith("TradingSession.")

    def handle(self, event: LoggedEvent, rows: Rows) -> None:
        if not self.wants(event.kind):
            return
        s = event.state
        at = event.at
        if event.kind == "TradingSession.Started":
            rows.put(
                "sessions",
                {
                    "session_id": event.originator_id,
                    "mode": s["mode"],
                    "starting_capital": str(s["starting_capital"]),
                    "config_digest": s["config_digest"],
                    "status": "ACTIVE",
                    "started_at": at,
                    "updated_at": at,
                    "last_reason": None,
                },
            )
        elif event.kind == "TradingSession.StatusChanged":
            row = rows.get("sessions", (event.originator_id,))
            if row is None:
                raise LookupError(f"status change at {event.position} for unknown session")
            rows.put(
                "sessions",
                {**row, "status": s["status"], "updated_at": at, "last_reason": s["reason"]},
            )
