"""What every benchmark emits: figures, each a value beside the floor measured in the run."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console, JustifyMethod
from rich.table import Table


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


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit.endswith("/s") or abs(value) >= 1000:  # rates as whole numbers
        return f"{value:,.0f}"
    return f"{value:,.2f}" if abs(value) >= 10 else f"{value:.3f}"


def render(console: Console, figures: list[Figure], title: str) -> None:
    """The table every benchmark prints before its JSON line."""
    table = Table(title=title, title_justify="left")
    columns: list[tuple[str, JustifyMethod]] = [
        ("figure", "left"),
        ("value", "right"),
        ("unit", "left"),
        ("floor", "right"),
        ("ratio", "right"),
        ("target", "right"),
        ("ok", "center"),
        ("what", "left"),
    ]
    for column, justify in columns:
        table.add_column(column, justify=justify)
    for f in figures:
        table.add_row(
            f.name,
            _fmt(f.value, f.unit),
            f.unit,
            _fmt(f.floor, f.unit),
            "-" if f.ratio is None else f"{f.ratio:.3f}",
            _fmt(f.target),
            "[green]yes[/]" if f.ok else "[red]no[/]",
            f.note,
        )
    console.print(table)


def publish(console: Console, figures: list[Figure], title: str, out: Path | None) -> int:
    """The table, the JSON list written to `out` if given, then the one JSON line on stdout
    that `bench/run_all.py` collects; returns the exit status."""
    render(console, figures, title)
    payload = [f.as_json() for f in figures]
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    sys.stdout.flush()
    print(json.dumps(payload))
    return 0
