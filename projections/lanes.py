"""Splitting a rebuild into lanes: groups of projections that each read the log once.

A lane reads only the events its projections want, so every event is decoded once per
lane that wants it and handled once per projection that wants it. Lanes run side by side
(one per core, see `adapters.rebuild_lanes`), so the rebuild takes as long as its dearest
lane: the split keeps that one as cheap as it can.
"""

from __future__ import annotations

from collections.abc import Mapping

from projections.spec import Projection, ReadsFields, SelectsEvents

# What handling an event costs a projection, in events read (see `Projection`'s
# `handling_cost`); measured on the replay benchmark's log, where handling, writing
# and digesting a row costs about one and a half times reading and decoding its event.
HANDLING = 1.5


def kind_of(topic: str) -> str:
    """'domain.order:Order.Placed' -> 'Order.Placed', as `LoggedEvent.kind`."""
    return topic.split(":", 1)[1]


def wanted_topics(projection: Projection, topics: Mapping[str, int]) -> set[str]:
    if not isinstance(projection, SelectsEvents):
        return set(topics)
    return {t for t in topics if projection.wants(kind_of(t))}


def lane_topics(
    lane: list[Projection], counts: Mapping[str, int]
) -> dict[str, frozenset[str] | None]:
    """The topics a lane reads, each with the fields its projections read (None: all)."""
    topics: dict[str, frozenset[str] | None] = {}
    for projection in lane:
        for topic in wanted_topics(projection, counts):
            fields = (
                projection.fields(kind_of(topic)) if isinstance(projection, ReadsFields) else None
            )
            if topic not in topics:
                topics[topic] = fields
            else:
                known = topics[topic]
                topics[topic] = None if known is None or fields is None else known | fields
    return topics


def lane_cost(lane: list[Projection], counts: Mapping[str, int]) -> float:
    """Events read (once per lane) plus events handled (once per projection, weighted)."""
    wanted = [wanted_topics(p, counts) for p in lane]
    read = sum(counts[t] for t in set().union(*wanted))
    handled = sum(
        HANDLING * getattr(p, "handling_cost", 1.0) * sum(counts[t] for t in topics)
        for p, topics in zip(lane, wanted, strict=True)
    )
    return read + handled


def plan_lanes(
    projections: list[Projection], counts: Mapping[str, int], lanes: int
) -> list[list[Projection]]:
    """At most `lanes` non-empty lanes, dearest first.

    Greedy first: each projection, dearest alone first, joins the lane it makes the least
    dear (a projection reading the same events as a lane joins it for its handling only,
    which keeps projections sharing events together). Then projections move out of the
    dearest lane while a move makes both lanes it touches cheaper than that one was.
    """
    plan: list[list[Projection]] = [[] for _ in range(max(1, min(lanes, len(projections))))]
    for projection in sorted(projections, key=lambda p: lane_cost([p], counts), reverse=True):
        best = min(plan, key=lambda lane: (lane_cost([*lane, projection], counts), len(lane)))
        best.append(projection)
    while _move_one(plan, counts):
        pass
    return sorted((lane for lane in plan if lane), key=lambda lane: -lane_cost(lane, counts))


def _move_one(plan: list[list[Projection]], counts: Mapping[str, int]) -> bool:
    """Move one projection out of the dearest lane if both lanes it touches then cost
    less than that one did (the sorted lane costs fall at every move, so moving ends)."""
    worst = max(plan, key=lambda lane: lane_cost(lane, counts))
    ceiling = lane_cost(worst, counts)
    for projection in worst:
        rest = [p for p in worst if p is not projection]
        for other in plan:
            if other is worst:
                continue
            if max(lane_cost(rest, counts), lane_cost([*other, projection], counts)) < ceiling:
                worst.remove(projection)
                other.append(projection)
                return True
    return False
