"""End to end, as operators run it: a trading loop (`ais run --mode paper`, a real OS
process replaying bundled bars on the wall clock) trades while `ais serve` (another
process on the same store) serves the API. An operator token (`ais token create`)
engages the kill switch over HTTP; then:

* the loop stops trading: from the engagement to the reset no order is placed or sent,
  at most the one decision already under way when the switch flipped is recorded, and
  every order the switch canceled stays canceled;
* it says so at once on its console (`kill switch HALTED (...)`) and keeps running:
  marks are still recorded (NAV and drawdown stay true), and after a reset over HTTP it
  says `trading resumes` and decides again; SIGTERM then ends it cleanly;
* the engagement is in /v1/risk/decisions with who asked (the token's name), and in
  `ais audit export`, whose lines `GET /v1/audit/export` streams identically.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from adapters.event_log import StoredEventSource
from adapters.persistence import eventsourcing_env
from tests.e2e_helpers import CLI, ROOT, ais, all_items, environ, export_lines, serving

T = TypeVar("T")
# These bars make the loop trade from its first decisions (every 12 steps).
DATA = ("ZECBTC_5m.csv", "DASHBTC_5m.csv", "ETCBTC_5m.csv")
LOOP = ["run", "--mode", "paper", *(a for f in DATA for a in ("--data", f"data/{f}"))]
LOOP += ["--interval", "0.03", "--cycles", "3000"]  # ~0.05 s a step; the cap is a backstop
EXTRA = {"AIS_CONFIG_DIR": str(ROOT / "config" / "btc-quoted")}  # the loop's and the API's
OPEN = {"PENDING_NEW", "SUBMITTED", "OPEN", "PARTIALLY_FILLED"}
STEPS_WHILE_HALTED = 30  # more than two decision intervals


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token(home: Path, name: str, role: str) -> str:
    return ais("token", "create", name, "--role", role, home=home, extra=EXTRA).stdout.split()[-1]


def wait_until(what: str, probe: Callable[[], T | None], loop: subprocess.Popen[str]) -> T:
    """Poll `probe` until it gives a value; fail if the loop dies or 30 s pass."""
    deadline = time.monotonic() + 30
    while True:
        found = probe()
        if found is not None:
            return found
        assert loop.poll() is None, f"the loop ended while waiting for {what}"
        assert time.monotonic() < deadline, f"no {what} within 30 s"
        time.sleep(0.05)


@contextmanager
def trading_loop(home: Path, console: Path) -> Iterator[subprocess.Popen[str]]:
    with console.open("w") as out:
        loop = subprocess.Popen(
            [*CLI, *LOOP],
            cwd=ROOT,
            env=environ(home, EXTRA),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        yield loop
    finally:
        if loop.poll() is None:
            loop.kill()
            loop.wait()


def topics_after(source: StoredEventSource, position: int) -> list[str]:
    """'Aggregate.Event' of every stored event after `position`."""
    return [e.topic.rsplit(":", 1)[-1] for e in source.read(after=position, limit=100_000)]


def test_kill_switch_over_http_stops_the_running_loop(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ais("keys", "init", home=home, extra=EXTRA)
    operator = token(home, "ops-olga", "operator")
    ops = bearer(operator)
    audit = bearer(token(home, "audit-ada", "auditor"))
    console = tmp_path / "loop.log"
    with (
        closing(StoredEventSource(eventsourcing_env(None, home))) as source,
        serving(home, EXTRA) as client,
        trading_loop(home, console) as loop,
    ):

        def orders() -> list[dict[str, Any]] | None:
            page = client.get("/v1/orders", headers=ops, params={"limit": 500})
            assert page.status_code == 200, page.text
            items: list[dict[str, Any]] = page.json()["items"]
            return items if len(items) >= 2 else None

        before = wait_until("orders from the loop", orders, loop)
        engaged = client.post("/v1/kill-switch", headers=ops, json={"reason": "e2e: stop it"})
        assert engaged.status_code == 200, engaged.text
        assert engaged.json()["kill_state"] == "HALTED"
        assert engaged.json()["requested_by"] == "ops-olga"
        at = engaged.json()["position"]

        halted = "kill switch HALTED (e2e: stop it)"
        wait_until(
            "HALTED on the loop's console", lambda: halted in console.read_text() or None, loop
        )

        def steps_since(position: int) -> int:
            """Loop steps since `position`: each records a mark per instrument."""
            return sum(t == "RiskDesk.MarkObserved" for t in topics_after(source, position))

        wait_until(
            f"{STEPS_WHILE_HALTED} steps while halted",
            lambda: steps_since(at) >= STEPS_WHILE_HALTED * len(DATA) or None,
            loop,
        )
        head = source.head()
        still = all_items(client, "/v1/orders", ops, head)
        assert len(still) >= len(before)
        assert not [o for o in still if o["status"] in OPEN], still  # the switch canceled them

        reset = client.post("/v1/kill-switch/reset", headers=ops, json={"reason": "e2e: over"})
        assert reset.status_code == 200, reset.text
        resumed_at = reset.json()["position"]
        resumed = "kill switch reset: trading resumes"
        wait_until("the loop resuming", lambda: resumed in console.read_text() or None, loop)
        wait_until(
            "a decision after the reset",
            lambda: "DecisionLog.CycleDecided" in topics_after(source, resumed_at) or None,
            loop,
        )

        loop.send_signal(signal.SIGTERM)
        assert loop.wait(timeout=20) == 0, console.read_text()[-3000:]
        said = console.read_text()
        assert "stopped by SIGTERM" in said.replace("\n", " "), said[-3000:]
        assert "Traceback" not in said, said
        assert said.index(halted) < said.index(resumed)

        head = source.head()
        kills = all_items(client, "/v1/risk/decisions", ops, head, decision="KILL_SWITCH_ENGAGED")
        assert [d["actor"] for d in kills] == ["ops-olga"], kills
        resets = all_items(client, "/v1/risk/decisions", ops, head, decision="KILL_SWITCH_RESET")
        assert [d["actor"] for d in resets] == ["ops-olga"], resets
        final = all_items(client, "/v1/orders", ops, head)
        assert not [o for o in final if o["status"] in OPEN], final  # closed out at SIGTERM
        streamed = export_lines(client, audit, {"to": head})

    out = tmp_path / "export"
    ais("audit", "export", "--out", str(out), "--to", str(head), home=home, extra=EXTRA)
    text = (out / "events.ndjson").read_text(encoding="utf-8")
    assert streamed == text.splitlines()  # the HTTP stream is the CLI's export, line for line
    assert operator not in text  # who asked is the token's name, never the token
    events = [json.loads(line) for line in streamed]
    kinds = [(e["position"], e["topic"].rsplit(":", 1)[-1]) for e in events]
    [kill] = [e for e in events if e["topic"].endswith("RiskDesk.KillSwitchEngaged")]
    [back] = [e for e in events if e["topic"].endswith("RiskDesk.KillSwitchReset")]
    assert kill["state"]["by"] == "ops-olga" and kill["state"]["reason"] == "e2e: stop it"
    assert back["state"]["by"] == "ops-olga"
    halted_span = [k for p, k in kinds if kill["position"] < p < back["position"]]
    placed_before = [p for p, k in kinds if k == "Order.Placed" and p < kill["position"]]
    assert len(placed_before) >= 2
    assert "Order.Placed" not in halted_span and "Order.Submitted" not in halted_span
    assert halted_span.count("DecisionLog.CycleDecided") <= 1  # only one already under way
    assert halted_span.count("RiskDesk.MarkObserved") >= STEPS_WHILE_HALTED * len(DATA)
