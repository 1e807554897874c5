"""End to end, as a user runs it: `ais demo`, `ais replay`, `ais token create`, `ais serve`,
then the HTTP read models agree with the replayed read models, a kill switch engaged over
HTTP is in /v1/risk/decisions and in `ais audit export`, and `ais report lots` works."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from adapters.settings import Settings
from interfaces.read_side import read_side

ROOT = Path(__file__).resolve().parents[1]
END = "2018-01-13T00:00:00"
SERVE = (sys.executable, "-m", "interfaces.cli", "serve")


def environ(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIS_")}
    env.update({"AIS_HOME": str(home), "COLUMNS": "200"})
    return env


def ais(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "interfaces.cli", *args],
        cwd=ROOT,
        env=environ(home),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-2000:])
    return result


def labelled(output: str, label: str) -> str:
    """The value after `label` on its line, or on the next line (rich may wrap it)."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith(label):
            rest = line.strip()[len(label) :].strip()
            return rest or lines[i + 1].strip()
    raise AssertionError(f"{label!r} not in output:\n{output[-2000:]}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def read_models(home: Path) -> dict[str, list[dict[str, Any]]]:
    """Rows of every read-model table, straight from the store."""
    tables: dict[str, list[dict[str, Any]]] = {}
    with read_side(Settings(home=home)) as side:
        for projection in side.projections:
            for table, row in side.store.dump(projection):
                tables.setdefault(table, []).append(dict(row))
    return tables


def all_orders(client: httpx.Client, auth: dict[str, str], at: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 500, "min_position": at}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/orders", headers=auth, params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if not cursor:
            return items


def test_demo_serve_read_models_kill_switch_and_export(tmp_path: Path) -> None:
    home = tmp_path / "home"
    demo = ais("demo", "--end", END, home=home)
    demo_digest = labelled(demo.stdout, "read-model digest")
    replay = ais("replay", home=home)
    assert replay.stdout.strip().splitlines()[-1] == f"digest {demo_digest}"

    operator = ais("token", "create", "ops-olga", "--role", "operator", home=home).stdout.strip()
    viewer = ais("token", "create", "view-vera", "--role", "viewer", home=home).stdout.strip()
    auditor = ais("token", "create", "audit-ada", "--role", "auditor", home=home).stdout.strip()

    lots = ais("report", "lots", "--year", "2018", home=home)
    rows = list(csv.DictReader(io.StringIO(lots.stdout)))
    assert rows, lots.stderr
    for row in rows:
        gain = Decimal(row["proceeds"]) - Decimal(row["cost_basis"]) - Decimal(row["fees"])
        assert Decimal(row["gain"]) == gain
        assert row["disposed_at"].startswith("2018-")
    assert ais("report", "lots", "--year", "2019", home=home).stdout.count("\n") == 1

    models = read_models(home)
    port = free_port()
    server = subprocess.Popen(
        [*SERVE, "--port", str(port), "--no-access-log", "--log-level", "warning"],
        cwd=ROOT,
        env=environ(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    ops = {"Authorization": f"Bearer {operator}"}
    view = {"Authorization": f"Bearer {viewer}"}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            deadline = time.monotonic() + 30
            while True:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "server not ready"
                time.sleep(0.1)
            head = int(models["portfolio"][0]["position"])

            portfolio = client.get("/v1/portfolio", headers=view, params={"min_position": head})
            assert portfolio.status_code == 200, portfolio.text
            [summary] = models["portfolio"]
            for field in ("cash", "nav", "high_water_mark", "drawdown", "daily_pnl"):
                assert Decimal(portfolio.json()[field]) == Decimal(str(summary[field])), field

            orders = all_orders(client, view, head)
            assert len(orders) > 0
            assert {
                (o["order_id"], o["status"], Decimal(o["filled_quantity"])) for o in orders
            } == {
                (r["order_id"], r["status"], Decimal(str(r["filled_quantity"])))
                for r in models["orders"]
            }

            exposure = client.get("/v1/exposure", headers=view, params={"min_position": head})
            assert exposure.status_code == 200, exposure.text
            [totals] = models["exposure_totals"]
            for field in ("gross", "net", "long", "short"):
                assert Decimal(exposure.json()[field]) == Decimal(str(totals[field])), field
            assert {
                i["instrument"]: Decimal(i["quantity"]) for i in exposure.json()["instruments"]
            } == {r["instrument"]: Decimal(str(r["quantity"])) for r in models["exposure"]}

            body = {"reason": "e2e drill"}
            refused = client.post("/v1/kill-switch", headers=view, json=body)
            assert refused.status_code == 403
            assert refused.headers["content-type"].startswith("application/problem+json")
            engaged = client.post("/v1/kill-switch", headers=ops, json=body)
            assert engaged.status_code == 200, engaged.text
            assert engaged.json()["kill_state"] == "HALTED"
            at = engaged.json()["position"]
            decisions = client.get(
                "/v1/risk/decisions",
                headers=view,
                params={"min_position": at, "limit": 500, "decision": "KILL_SWITCH_ENGAGED"},
            )
            assert decisions.status_code == 200, decisions.text
            kills = [d for d in decisions.json()["items"] if d["decision"] == "KILL_SWITCH_ENGAGED"]
            if not kills:  # the filter may not exist: page through everything
                kills = all_decisions(client, view, at)
            assert any(d["actor"] == "ops-olga" for d in kills), kills

            audit = {"Authorization": f"Bearer {auditor}"}
            assert client.get("/v1/audit/checkpoints", headers=view).status_code == 403
            checkpoints = client.get("/v1/audit/checkpoints", headers=audit).json()["items"]
            assert checkpoints and checkpoints[-1]["tree_size"] > 5  # the demo sealed the log
            proof = client.get("/v1/audit/proof/5", headers=audit)
            assert proof.status_code == 200, proof.text
            (tmp_path / "proof.json").write_text(proof.text)
            missing = client.get("/v1/audit/proof/999999999", headers=audit)
            assert missing.status_code == 404
            assert missing.headers["content-type"].startswith("application/problem+json")
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    checked = ais("audit", "check-proof", str(tmp_path / "proof.json"), home=home)
    assert checked.returncode == 0, checked.stderr

    out = tmp_path / "export"
    ais("audit", "export", "--out", str(out), home=home)
    engaged_events = [
        json.loads(line)
        for line in (out / "events.ndjson").read_text().splitlines()
        if "KillSwitchEngaged" in line
    ]
    assert engaged_events
    state = engaged_events[-1]["state"]
    state = json.loads(state) if isinstance(state, str) else state
    assert state["by"] == "ops-olga"
    assert operator not in (out / "events.ndjson").read_text()  # the name, never the token


def all_decisions(client: httpx.Client, auth: dict[str, str], at: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 500, "min_position": at}
        if cursor:
            params["cursor"] = cursor
        body = client.get("/v1/risk/decisions", headers=auth, params=params).json()
        found.extend(d for d in body["items"] if d["decision"] == "KILL_SWITCH_ENGAGED")
        cursor = body["next_cursor"]
        if not cursor:
            return found
