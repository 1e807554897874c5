"""The HTTP benchmark still runs: `ais serve` and the bare floor start, figures come out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_http_bench_quick_emits_figures() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "http_api.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    by_name = {f["name"]: f for f in figures}
    assert {
        "http_bare_rps",
        "http_portfolio_rps",
        "http_portfolio_p99_ms",
        "http_orders_rps",
        "http_orders_p99_ms",
    } <= set(by_name)
    for figure in figures:
        assert set(figure) == {"name", "value", "unit", "floor", "ratio", "target", "ok"}
        assert figure["value"] > 0
    portfolio = by_name["http_portfolio_rps"]
    assert portfolio["floor"] == by_name["http_bare_rps"]["value"]
    assert portfolio["target"] == 0.5 and portfolio["ratio"] > 0
    assert by_name["http_portfolio_p99_ms"]["target"] == 20.0
