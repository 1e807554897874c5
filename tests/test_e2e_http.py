"""End to end, as a user runs it: `ais demo`, `ais replay`, `ais token create`, `ais serve`,
then the HTTP read models agree with the replayed read models, a kill switch engaged over
HTTP is in /v1/risk/decisions and in `ais audit export`, and `ais report lots` works."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from adapters.settings import Settings
from interfaces.read_side import read_side
from tests.e2e_helpers import ais, all_items, serving

END = "2018-01-13T00:00:00"


def labelled(output: str, label: str) -> str:
    """The value after `label` on its line, or on the next line (rich may wrap it)."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith(label):
            rest = line.strip()[len(label) :].strip()
            return rest or lines[i + 1].strip()
    raise AssertionError(f"{label!r} not in output:\n{output[-2000:]}")


def read_models(home: Path) -> dict[str, list[dict[str, Any]]]:
    """Rows of every read-model table, straight from the store."""
    tables: dict[str, list[dict[str, Any]]] = {}
    with read_side(Settings(home=home)) as side:
        for projection in side.projections:
            for table, row in side.store.dump(projection):
                tables.setdefault(table, []).append(dict(row))
    return tables


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
    ops = {"Authorization": f"Bearer {operator}"}
    view = {"Authorization": f"Bearer {viewer}"}
    with serving(home) as client:
        head = int(models["portfolio"][0]["position"])

        portfolio = client.get("/v1/portfolio", headers=view, params={"min_position": head})
        assert portfolio.status_code == 200, portfolio.text
        [summary] = models["portfolio"]
        for field in ("cash", "nav", "high_water_mark", "drawdown", "daily_pnl"):
            assert Decimal(portfolio.json()[field]) == Decimal(str(summary[field])), field

        orders = all_items(client, "/v1/orders", view, head)
        assert len(orders) > 0
        assert {(o["order_id"], o["status"], Decimal(o["filled_quantity"])) for o in orders} == {
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
        kills = all_items(client, "/v1/risk/decisions", view, at, decision="KILL_SWITCH_ENGAGED")
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
