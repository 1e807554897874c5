"""Rebuilding read models from position 0, and checking live ones against a rebuild.

A rebuild stops at the head of the log as it was when it began (or at `stop_at`), so
its digest describes one definite log; a projector following the log takes it on from
there. It runs in lanes (`projections.lanes`): each reads from the database only the
topics its projections want. With `elsewhere`, lanes after the first run there (other
processes, see `adapters.rebuild_lanes`) while this process runs the first.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from projections.digest import Difference, combined, digest_rows, first_difference
from projections.lanes import lane_topics, plan_lanes
from projections.runner import EventSource, Progress, Projector, ReadStore
from projections.spec import LoggedEvent, Projection, Row

# A rebuild owns its tables, so it can take bigger batches than a projector following the
# head: fewer transactions, and one statement per table covers more rows.
REBUILD_BATCH = 20000
# Below this many events a rebuild takes a second or two in one process: starting another
# interpreter for a lane would cost about as much as it saves.
LANES_FROM = 50_000


class RebuildableStore(ReadStore, Protocol):
    def dump(self, projection: Projection) -> Iterator[tuple[str, Row]]: ...

    def drop(self, projection: Projection) -> None: ...


class TopicSource(EventSource, Protocol):
    """A log that can count its topics and hand out only some of them."""

    def topic_counts(self, upto: int) -> dict[str, int]: ...

    def read_topics(
        self, after: int, stop: int, topics: Mapping[str, frozenset[str] | None]
    ) -> list[LoggedEvent]: ...


class Lanes(Protocol):
    """Workers for lanes elsewhere: given their lanes, then their progress and digests."""

    def start(
        self, lanes: list[list[Projection]], counts: Mapping[str, int], stop: int
    ) -> None: ...

    def reached(self) -> int: ...

    def wait(self, progress: Progress | None) -> dict[str, str]: ...

    def cancel(self) -> None: ...


class LaneRunner(Protocol):
    def __call__(self, workers: int) -> Lanes:
        """Start `workers` workers now: they get ready while the log's topics are counted."""
        ...


@dataclass(frozen=True)
class ReplayResult:
    digests: dict[str, str]
    difference: Difference | None = None

    @property
    def digest(self) -> str:
        return combined(self.digests)


class LaneSource:
    """The log up to `stop`, only `topics` (and of each, only its fields): what one lane
    of a rebuild reads."""

    def __init__(
        self, source: TopicSource, topics: Mapping[str, frozenset[str] | None], stop: int
    ) -> None:
        self.source = source
        self.topics = dict(sorted(topics.items()))
        self.stop = stop

    def head(self) -> int:
        return self.stop

    def read(self, after: int, limit: int) -> list[LoggedEvent]:
        """The wanted events of the first window of `limit` positions that has any."""
        while after < self.stop:
            upto = min(after + limit, self.stop)
            events = self.source.read_topics(after, upto, self.topics)
            if events:
                return events
            after = upto
        return []


def rebuild_lane(
    source: TopicSource,
    store: RebuildableStore,
    lane: list[Projection],
    counts: Mapping[str, int],
    stop: int,
    progress: Progress | None = None,
) -> dict[str, str]:
    """Drop the lane's read models, project positions 1..stop into them; their digests."""
    for projection in lane:
        store.reset(projection)
    lane_source = LaneSource(source, lane_topics(lane, counts), stop)
    projector = Projector(lane_source, store, lane, batch_size=REBUILD_BATCH)
    projector.run_once(progress, stop)
    for projection in lane:
        # the events after its last wanted one were never read: it has seen them all
        reached = store.position(projection.name)
        if reached < stop:
            store.commit(projection, store.rows(projection), position=stop, expected=reached)
    if progress is not None:
        progress(stop, stop)
    return {p.name: digest_rows(store.dump(p)) for p in lane}


def rebuild(
    source: TopicSource,
    store: RebuildableStore,
    projections: list[Projection],
    progress: Progress | None = None,
    stop_at: int | None = None,
    *,
    lanes: int = 1,
    elsewhere: LaneRunner | None = None,
    lanes_from: int = LANES_FROM,
) -> ReplayResult:
    """Drop the read models and project the log (up to `stop_at`, else its head) again."""
    stop = source.head() if stop_at is None else stop_at
    workers = min(lanes, len(projections)) - 1
    if elsewhere is None or workers < 1 or stop < lanes_from:
        counts = source.topic_counts(stop)
        return ReplayResult(rebuild_lane(source, store, projections, counts, stop, progress))
    others = elsewhere(workers)  # they start while the topics are counted
    try:
        counts = source.topic_counts(stop)
        plan = plan_lanes(projections, counts, lanes)
        others.start(plan[1:], counts, stop)

        def together(position: int, _head: int) -> None:
            if progress is not None:
                progress(min(position, others.reached()), stop)

        digests = rebuild_lane(source, store, plan[0], counts, stop, together)
    except BaseException:
        others.cancel()
        raise
    digests.update(others.wait(progress))
    return ReplayResult(digests)


def verify(
    source: TopicSource,
    live: RebuildableStore,
    scratch: RebuildableStore,
    projections: list[Projection],
    progress: Progress | None = None,
    *,
    lanes: int = 1,
    elsewhere: LaneRunner | None = None,
) -> ReplayResult:
    """Rebuild into scratch tables up to the live position, compare, drop the scratch.

    The live models are first brought to the head of the log, so both sides have
    seen exactly the same events.
    """
    Projector(source, live, projections).run_once()
    reached = max(live.position(p.name) for p in projections)
    result = rebuild(
        source, scratch, projections, progress, reached, lanes=lanes, elsewhere=elsewhere
    )
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
