"""What every benchmark emits: figures, each a value beside the floor measured in the run."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class Figure:
    """One row of the JSON line. `ok` is True when there is no target to miss."""

    name: str
    value: float
    unit: str
    floor: float | None = None
    ratio: float | None = None
    target: float | None = None
    ok: bool = True
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": _round(self.value),
            "unit": self.unit,
            "floor": None if self.floor is None else _round(self.floor),
            "ratio": None if self.ratio is None else round(self.ratio, 4),
            "target": self.target,
            "ok": self.ok,
        }


def _round(value: float) -> float:
    return round(value, 3) if abs(value) < 1000 else round(value, 1)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]
