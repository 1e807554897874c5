"""The console benchmark still runs: a small log, `ais serve`, page loads, figures out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_console_bench_quick_emits_figures() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "console.py"), "--quick", "--events", "3000"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = {f["name"]: f for f in json.loads(done.stdout.strip().splitlines()[-1])}
    assert set(figures) == {"console_load_p50_ms", "console_load_p95_ms", "console_load_max_ms"}
    for figure in figures.values():
        assert figure["value"] > 0 and figure["floor"] > 0
    assert figures["console_load_p95_ms"]["target"] == 300.0
    assert figures["console_load_p50_ms"]["value"] <= figures["console_load_max_ms"]["value"]
