"""Reading the stored log: notifications decoded by the application's own transcoder."""

from __future__ import annotations

import hashlib
from uuid import UUID

from eventsourcing.application import Application

from projections.spec import LoggedEvent


class EventLog(Application[UUID]):
    """Opens the same event tables as TradingApp (same name) without any write logic."""

    name = "ais"


class StoredEventSource:
    def __init__(self, env: dict[str, str]) -> None:
        self.log = EventLog(env)
        self._decode = self.log.mapper.transcoder.decode

    def head(self) -> int:
        return self.log.recorder.max_notification_id() or 0

    def read(self, after: int, limit: int) -> list[LoggedEvent]:
        return [
            LoggedEvent(
                position=n.id,
                topic=n.topic,
                originator_id=str(n.originator_id),
                originator_version=n.originator_version,
                state=self._decode(n.state),
            )
            for n in self.log.recorder.select_notifications(start=after + 1, limit=limit)
        ]

    def close(self) -> None:
        self.log.close()


def log_digest(log: EventLog, batch: int = 5000) -> str:
    """SHA-256 over every stored record in log order: equal logs, equal digests."""
    h = hashlib.sha256()
    position = 0
    while True:
        notes = log.recorder.select_notifications(start=position + 1, limit=batch)
        if not notes:
            return h.hexdigest()
        for n in notes:
            h.update(f"{n.topic}|{n.originator_id}|{n.originator_version}|".encode())
            h.update(hashlib.sha256(n.state).digest())
        position = notes[-1].id
