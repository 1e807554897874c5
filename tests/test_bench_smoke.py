"""The benchmarks still run: a quick pass must end with a JSON list of figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_approvals_bench_quick_emits_figures() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "approvals.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    names = {f["name"] for f in figures}
    assert {
        "approve_verify_p99_us",
        "approvals_sqlite_cmds_per_s",
        "raw_save_sqlite_per_s",
    } <= names
    for figure in figures:
        assert set(figure) == {"name", "value", "unit", "floor", "ratio", "target", "ok"}
        assert figure["value"] > 0
