"""Splitting a rebuild into lanes: groups of projections that each read the log once.

A lane reads only the events its projections want, so every event is decoded once per
lane that wants it and handled once per projection that wants it. Lanes run side by side
(one per core, see `adapters.rebuild_lanes`), so the rebuild takes as long as its dearest
lane: the split keeps that one as cheap as it can.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

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
    projections: list[Projection], counts: Mapping[str, int], lanes: int, late: float = 0.0
) -> list[list[Projection]]:
    """At most `lanes` non-empty lanes: the first for this process, then the others,
    dearest first, for workers that start `late` (in events handled) after it.

    Greedy first: each projection, dearest alone first, joins the lane it makes finish
    soonest (a projection reading the same events as a lane joins it for its handling
    only, which keeps projections sharing events together). Then projections move out of
    the lane that finishes last while a move makes both lanes it touches finish sooner.
    """
    plan: list[list[Projection]] = [[] for _ in range(max(1, min(lanes, len(projections))))]
    starts = [0.0] + [late] * (len(plan) - 1)

    def finish(i: int, lane: list[Projection]) -> float:
        return starts[i] + lane_cost(lane, counts)

    for projection in sorted(projections, key=lambda p: lane_cost([p], counts), reverse=True):
        best = min(range(len(plan)), key=lambda i: (finish(i, [*plan[i], projection]), i))
        plan[best].append(projection)
    while _move_one(plan, finish):
        pass
    others = sorted((lane for lane in plan[1:] if lane), key=lambda lane: -lane_cost(lane, counts))
    return [plan[0], *others] if plan[0] else others


def _move_one(
    plan: list[list[Projection]], finish: Callable[[int, list[Projection]], float]
) -> bool:
    """Move one projection out of the lane finishing last if both lanes it touches then
    finish sooner than that one did (the sorted finishing times fall at every move, so
    moving ends)."""
    last = max(range(len(plan)), key=lambda i: finish(i, plan[i]))
    ceiling = finish(last, plan[last])
    for projection in plan[last]:
        rest = [p for p in plan[last] if p is not projection]
        for other in range(len(plan)):
            if other == last:
                continue
            if max(finish(last, rest), finish(other, [*plan[other], projection])) < ceiling:
                plan[last].remove(projection)
                plan[other].append(projection)
                return True
    return False
