"""Rebuilding read models from position 0, and checking live ones against a rebuild."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from projections.digest import Difference, combined, digest_rows, first_difference
from projections.runner import EventSource, Progress, Projector, ReadStore
from projections.spec import Projection, Row

# A rebuild owns its tables, so it can take bigger batches than a projector following the
# head: fewer transactions, and one statement per table covers more rows.
REBUILD_BATCH = 5000


class RebuildableStore(ReadStore, Protocol):
    def dump(self, projection: Projection) -> Iterator[tuple[str, Row]]: ...

    def drop(self, projection: Projection) -> None: ...


@dataclass(frozen=True)
class ReplayResult:
    digests: dict[str, str]
    difference: Difference | None = None

    @property
    def digest(self) -> str:
        return combined(self.digests)


def rebuild(
    source: EventSource,
    store: RebuildableStore,
    projections: list[Projection],
    progress: Progress | None = None,
    stop_at: int | None = None,
) -> ReplayResult:
    """Drop the read models and project the whole log (up to `stop_at`) again."""
    for projection in projections:
        store.reset(projection)
    Projector(source, store, projections, batch_size=REBUILD_BATCH).run_once(progress, stop_at)
    return ReplayResult({p.name: digest_rows(store.dump(p)) for p in projections})


def verify(
    source: EventSource,
    live: RebuildableStore,
    scratch: RebuildableStore,
    projections: list[Projection],
    progress: Progress | None = None,
) -> ReplayResult:
    """Rebuild into scratch tables up to the live position, compare, drop the scratch.

    The live models are first brought to the head of the log, so both sides have
    seen exactly the same events.
    """
    Projector(source, live, projections).run_once()
    reached = max(live.position(p.name) for p in projections)
    result = rebuild(source, scratch, projections, progress, stop_at=reached)
    try:
        for projection in projections:
            difference = first_difference(
                projection, live.dump(projection), scratch.dump(projection)
            )
            if difference is not None:
                return ReplayResult(result.digests, difference)
        return result
    finally:
        for projection in projections:
            scratch.drop(projection)
