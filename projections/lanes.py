"""Splitting a rebuild into lanes: groups of projections that each read the log once.

A lane reads only the events its projections want, so every event is decoded once per
lane that wants it and handled once per projection that wants it. Lanes run side by side
(one per core, see `adapters.rebuild_lanes`); the split keeps the dearest lane cheap.
"""

from __future__ import annotations

from collections.abc import Mapping

from projections.spec import Projection, SelectsEvents


def kind_of(topic: str) -> str:
    """'domain.order:Order.Placed' -> 'Order.Placed', as `LoggedEvent.kind`."""
    return topic.split(":", 1)[1]


def wanted_topics(projection: Projection, topics: Mapping[str, int]) -> set[str]:
    if not isinstance(projection, SelectsEvents):
        return set(topics)
    return {t for t in topics if projection.wants(kind_of(t))}


def lane_cost(lane: list[Projection], counts: Mapping[str, int]) -> int:
    """Events read and decoded (once per lane) plus events handled (once per projection)."""
    wanted = [wanted_topics(p, counts) for p in lane]
    read = set().union(*wanted)
    return sum(counts[t] for t in read) + sum(counts[t] for w in wanted for t in w)


def plan_lanes(
    projections: list[Projection], counts: Mapping[str, int], lanes: int
) -> list[list[Projection]]:
    """At most `lanes` non-empty lanes, dearest first.

    Greedy: each projection, dearest alone first, joins the lane it makes the least
    dear; a projection reading the same events as a lane's joins it for only its
    handling, which keeps projections sharing events together.
    """
    alone = sorted(projections, key=lambda p: lane_cost([p], counts), reverse=True)
    plan: list[list[Projection]] = [[] for _ in range(max(1, min(lanes, len(projections))))]
    for projection in alone:
        best = min(plan, key=lambda lane: (lane_cost([*lane, projection], counts), len(lane)))
        best.append(projection)
    filled = [lane for lane in plan if lane]
    return sorted(filled, key=lambda lane: lane_cost(lane, counts), reverse=True)
