"""The scaling curve (issue 10): a cost per event at growing log sizes, against the smallest.

Not a benchmark of its own (run_all.py names the benchmarks): replay.py and audit.py measure
the points and share this one way of turning them into figures, so every curve reads alike.
"""

from __future__ import annotations

from figures import Figure

# Cost per event at the largest size may grow by a quarter over the smallest before a
# figure turns red: the machine is shared and small sizes carry their fixed costs too.
FLAT_TARGET = 0.8


def size_label(events: int) -> str:
    if events % 1_000_000 == 0:
        return f"{events // 1_000_000}m"
    if events % 1000 == 0:
        return f"{events // 1000}k"
    return str(events)


def scaling_figures(kind: str, store: str, seconds: dict[int, tuple[int, float]]) -> list[Figure]:
    """`scaling_<kind>_<store>_<size>_us_per_event` for each log size in `seconds`, which
    maps the size to (events timed, seconds). The smallest size is the floor of the others:
    ratio = floor / value, so 1.0 is flat and lower means an event costs more in a
    larger log."""
    per_event = {size: s / n * 1e6 for size, (n, s) in seconds.items()}
    smallest = min(per_event)
    floor = per_event[smallest]
    figures = []
    for size, value in sorted(per_event.items()):
        name = f"scaling_{kind}_{store}_{size_label(size)}_us_per_event"
        if size == smallest:
            figures.append(Figure(name, value, "us/event", note="floor of the larger sizes"))
            continue
        ratio = floor / value
        figures.append(
            Figure(
                name,
                value,
                "us/event",
                floor,
                ratio,
                FLAT_TARGET,
                ok=ratio >= FLAT_TARGET,
                note=f"floor: the {size_label(smallest)} figure; ratio 1.0 = flat",
            )
        )
    return figures
