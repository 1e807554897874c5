"""The audit benchmark still runs: a quick pass ends with a JSON list of figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_audit_bench_quick_emits_figures() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "audit.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    names = {f["name"] for f in figures}
    assert {
        "audit_export_sqlite_events_per_s",
        "read_sqlite_events_per_s",
        "audit_verify_events_per_s",
        "read_file_events_per_s",
        "audit_verify_hmac_events_per_s",
        "audit_export_sqlite_peak_rss_mb",
        "audit_verify_peak_rss_mb",
        "audit_export_sqlite_one_process_events_per_s",
        "scaling_export_sqlite_2k_us_per_event",
        "scaling_export_sqlite_20k_us_per_event",
    } <= names
    by_name = {f["name"]: f for f in figures}
    assert by_name["audit_export_sqlite_events_per_s"]["target"] == 100_000
    assert by_name["audit_verify_events_per_s"]["target"] == 200_000
    # the scaling curve: the whole 20k log against the first 2k
    point = by_name["scaling_export_sqlite_20k_us_per_event"]
    assert point["floor"] == by_name["scaling_export_sqlite_2k_us_per_event"]["value"]
    assert point["ratio"] > 0
    for figure in figures:
        assert set(figure) == {"name", "value", "unit", "floor", "ratio", "target", "ok"}
        assert figure["value"] > 0
        if figure["target"] is not None and figure["unit"] == "event/s":
            assert figure["ok"] == (figure["value"] >= figure["target"])
