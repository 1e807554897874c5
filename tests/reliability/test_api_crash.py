"""`ais serve` SIGKILLed under a stream of control commands: nothing half-applied.

An operator client keeps sending start session -> halt session -> kill switch -> reset,
each with its own reason, while the API process is SIGKILLed at seeded random moments
and restarted. Whatever was acknowledged (a 2xx answer) is in the log exactly once;
what was cut off is there at most once; every change carries a valid approval; and the
read models the killed API was projecting equal a rebuild (`ais replay --verify`).
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from adapters.event_log import EventLog
from adapters.persistence import eventsourcing_env
from tests.reliability.test_loop_crash import ais, forkserver
from tests.reliability.venue import audit_approvals, kind, notifications, state
from tests.test_multiprocess import free_port, wait_healthy
from tests.test_projector_crash import cli_env, run_cli

SEED = 9
KILLS = 3


class Operator(threading.Thread):
    """Sends the commands in a loop; remembers which ones were acknowledged."""

    def __init__(self, base: str, token: str) -> None:
        super().__init__(name="operator", daemon=True)
        self.base = base
        self.headers = {"Authorization": f"Bearer {token}"}
        self.stop = threading.Event()
        self.acknowledged: Counter[tuple[str, str]] = Counter()  # (what, reason or id)
        self.cut_off = 0

    def post(self, path: str, body: dict[str, str]) -> httpx.Response | None:
        try:
            answer = httpx.post(f"{self.base}{path}", json=body, headers=self.headers, timeout=10)
        except httpx.HTTPError:
            self.cut_off += 1
            time.sleep(0.05)
            return None
        return answer if answer.is_success else None

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            started = self.post("/v1/sessions", {"mode": "paper", "starting_capital": "1000"})
            if started is not None:
                session = started.json()["session_id"]
                self.acknowledged["start", session] += 1
                if self.post(f"/v1/sessions/{session}/halt", {"reason": f"halt {i}"}):
                    self.acknowledged["halt", session] += 1
            engaged = self.post("/v1/kill-switch", {"reason": f"drill {i}"})
            if engaged is not None and engaged.json()["changed"]:  # else it already was
                self.acknowledged["kill", f"drill {i}"] += 1
            if self.post("/v1/kill-switch/reset", {"reason": f"reset {i}"}):
                self.acknowledged["reset", f"reset {i}"] += 1


def test_api_killed_mid_command_leaves_nothing_half_applied(tmp_path: Path) -> None:
    schedule = random.Random(SEED)
    env = cli_env(None, tmp_path / "home")
    made = ais(env, "token", "create", "ops", "--role", "operator")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    port = free_port()
    log = tmp_path / "api.log"
    context = forkserver()
    argv = ["serve", "--port", str(port), "--no-access-log", "--log-level", "warning"]

    operator = Operator(f"http://127.0.0.1:{port}", token)
    for round_ in range(KILLS + 1):
        proc = context.Process(target=run_cli, args=(argv, env, str(log)))
        proc.start()
        wait_healthy(port)
        if round_ == 0:
            operator.start()
        if round_ == KILLS:
            break  # the last one is left alone
        time.sleep(schedule.uniform(0.5, 1.5))
        proc.kill()
        proc.join(timeout=30)
        assert proc.exitcode == -signal.SIGKILL
        proc.close()
    time.sleep(1.0)
    operator.stop.set()
    operator.join(timeout=30)
    assert proc.pid is not None
    os.kill(proc.pid, signal.SIGTERM)
    proc.join(timeout=30)

    events = EventLog(eventsourcing_env(None, tmp_path / "home"))
    try:
        notes = notifications(events)
    finally:
        events.close()
    logged: Counter[tuple[str, str]] = Counter()
    for n in notes:
        what, values = kind(n), state(n)
        if what == "TradingSession.Started":
            logged["start", str(n.originator_id)] += 1
        elif what == "TradingSession.StatusChanged" and values["status"] == "HALTED":
            logged["halt", str(n.originator_id)] += 1
        elif what == "RiskDesk.KillSwitchEngaged":
            logged["kill", values["reason"]] += 1
        elif what == "RiskDesk.KillSwitchReset":
            logged["reset", values["reason"]] += 1
    acknowledged = operator.acknowledged
    assert all(n == 1 for n in acknowledged.values())
    missing = {k for k in acknowledged if logged[k] != 1}
    assert not missing, f"acknowledged but not in the log exactly once: {missing}"
    assert max(logged.values()) == 1, "a command landed twice"
    approvals = audit_approvals(notes)
    assert operator.cut_off > 0, "no kill landed while a command was in flight"
    verified = ais(env, "replay", "--verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "Traceback" not in log.read_text()
    print(
        f"{KILLS} API kills: {sum(acknowledged.values())} commands acknowledged, "
        f"{operator.cut_off} cut off, {sum(logged.values()) - sum(acknowledged.values())} "
        f"applied without an answer; {approvals.tokens_verified} approvals re-verified"
    )
