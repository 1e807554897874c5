"""The replay benchmark still runs: a quick pass must end with a JSON list of figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KINDS = (
    "replay_{}_events_per_s",
    "read_raw_{}_events_per_s",
    "read_decoded_{}_events_per_s",
    "replay_{}_peak_rss_mb",
    "scaling_replay_{}_us_per_event",
    "scaling_append_{}_us_per_event",
)
SQLITE_ONLY = ("replay_{}_one_process_events_per_s", "replay_{}_digest_share")


def test_replay_bench_quick_emits_figures() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "replay.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    by_name = {f["name"]: f for f in figures}
    stores = ["sqlite"]
    if any(name.startswith("replay_postgres_") for name in by_name):
        stores.append("postgres")
    for store in stores:
        for size in ("2k", "10k"):
            kinds = KINDS + SQLITE_ONLY if store == "sqlite" else KINDS
            assert {kind.format(f"{store}_{size}") for kind in kinds} <= set(by_name)
        for kind in ("replay", "append"):  # the scaling curve: 10k against the 2k floor
            point = by_name[f"scaling_{kind}_{store}_10k_us_per_event"]
            floor = by_name[f"scaling_{kind}_{store}_2k_us_per_event"]
            assert point["floor"] == floor["value"]
            assert point["ratio"] > 0
    for figure in figures:
        assert set(figure) == {"name", "value", "unit", "floor", "ratio", "target", "ok"}
        assert figure["value"] > 0
        assert isinstance(figure["ok"], bool)
    for store in ("sqlite", "postgres"):
        rebuild = by_name.get(f"replay_{store}_10k_events_per_s")
        if rebuild is None:
            continue
        assert rebuild["floor"] > 0
        assert rebuild["ratio"] > 0
        assert rebuild["target"] is not None
