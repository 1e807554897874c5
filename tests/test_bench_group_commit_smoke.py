"""The group-commit benchmark still runs: a small pass ends with a JSON list of figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import require_postgres

ROOT = Path(__file__).resolve().parents[1]


def test_group_commit_bench_quick_emits_figures_for_both_stores() -> None:
    require_postgres()
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "group_commit.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    figures = {f["name"]: f for f in json.loads(done.stdout.strip().splitlines()[-1])}
    for store in ("sqlite", "postgres"):
        assert {
            f"group_commit_{store}_cmds_per_s",
            f"group_commit_{store}_vs_store_txn",
            f"one_txn_per_cmd_{store}_cmds_per_s",
            f"group_commit_{store}_cmds_per_txn",
        } <= set(figures)
        # Several callers' commands shared a transaction.
        assert figures[f"group_commit_{store}_cmds_per_txn"]["value"] > 1
    for figure in figures.values():
        assert set(figure) == {"name", "value", "unit", "floor", "ratio", "target", "ok"}
        assert figure["value"] > 0
