"""When to snapshot the RiskDesk: each time a save moves it past a multiple of the interval.

Every approval and every mark is a desk event, so without snapshots a cold load (a new
process, an evicted cache entry) replays the desk's whole history. With one snapshot
every `DESK_SNAPSHOT_INTERVAL` events, a load reads the latest snapshot and fewer than
that many events after it, however long the log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from uuid import UUID

from eventsourcing.persistence import EventStore, PersistenceError, Recording

from domain.risk_desk import RiskDesk

# A snapshot costs one small write per interval; a cold load replays < interval events.
DESK_SNAPSHOT_INTERVAL = 1000
log = logging.getLogger("ais.trading")


def snapshot_saved_desk(
    snapshots: EventStore[UUID] | None,
    saved: Iterable[object],
    recordings: list[Recording[UUID]],
    interval: int = DESK_SNAPSHOT_INTERVAL,
) -> None:
    """Snapshot a just-saved desk whose new events reached a multiple of `interval`.

    Taken from the object in memory: it was just saved, so its state is exactly that of
    its recorded version (`Application.take_snapshot` would reload it and replay up to
    `interval` events instead). A failed snapshot is logged, not raised: the save it
    follows is on disk already, and the next multiple tries again.
    """
    desk = next((obj for obj in saved if isinstance(obj, RiskDesk)), None)
    if snapshots is None or desk is None:
        return
    events = (r.domain_event for r in recordings)
    if not any(e.originator_id == desk.id and e.originator_version % interval == 0 for e in events):
        return
    try:
        snapshots.put([RiskDesk.Snapshot.take(desk)])
    except PersistenceError as exc:
        log.warning(
            "desk snapshot not taken",
            extra={"account_id": desk.account_id, "version": desk.version, "error": str(exc)},
        )
