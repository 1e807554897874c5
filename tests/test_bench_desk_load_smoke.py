"""The desk-load benchmark still runs: a small pass ends with a JSON list of figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_desk_load_bench_small_emits_figures() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "desk_load.py"), "--events", "12000"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    figures = {f["name"]: f for f in json.loads(done.stdout.strip().splitlines()[-1])}
    assert {"desk_load_sqlite_10k_ms", "desk_load_sqlite_12k_ms"} <= set(figures)
    for figure in figures.values():
        assert set(figure) == {"name", "value", "unit", "floor", "ratio", "target", "ok"}
        assert figure["value"] > 0
