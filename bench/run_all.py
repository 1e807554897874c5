"""Run every benchmark in bench/ and gather their figures into bench/results/.

Each benchmark prints a table and ends with one JSON line (a list of figures). This
collects those lines into `latest.json` and a markdown table `latest.md`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
# Named, not globbed: bench/ also holds shared modules (figures.py) that are no benchmark.
BENCHMARKS = (
    "approvals",
    "group_commit",
    "desk_load",
    "backtest",
    "replay",
    "audit",
    "http_api",
    "console",
)


def run(script: Path, extra: list[str]) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, str(script), *extra], capture_output=True, text=True, check=False
    )
    sys.stdout.write(done.stdout)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"{script.name} failed with exit code {done.returncode}")
    figures: list[dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def table(figures: list[dict[str, Any]]) -> str:
    lines = [
        "| figure | value | unit | floor | ratio | target | ok |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        cells = [
            f["name"],
            f["value"],
            f["unit"],
            f["floor"],
            f["ratio"],
            f["target"],
            "pass" if f["ok"] else "FAIL",
        ]
        lines.append("| " + " | ".join("-" if c is None else str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    extra = sys.argv[1:]
    figures: list[dict[str, Any]] = []
    for name in BENCHMARKS:
        figures += run(HERE / f"{name}.py", extra)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(figures, indent=2) + "\n")
    (RESULTS / "latest.md").write_text(table(figures))
    print(f"wrote {RESULTS / 'latest.json'} and latest.md ({len(figures)} figures)")


if __name__ == "__main__":
    main()
