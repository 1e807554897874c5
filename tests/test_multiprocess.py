"""Separate OS processes on one PostgreSQL: two `ais project --follow` projectors and two
`ais serve` API processes (each also projecting in a thread) follow a log that a writer
keeps appending to. Afterwards the read models equal a rebuild from position 0 (no event
skipped, none applied twice, whoever applied it), both projectors report the same
figures on `/metrics`, and both APIs give the same answers.

The writer is a real `ais run --mode paper` process replaying bundled candles (marks,
decisions, orders placed, submitted to the paper venue, filled) as fast as it can.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import SECRET, ReadModels
from tests.test_observability import parse, value

ROOT = Path(__file__).resolve().parents[1]
DATA = ("ETHBTC_5m.csv", "XMRBTC_5m.csv", "LTCBTC_5m.csv")
WRITER = [*(a for f in DATA for a in ("--data", f"data/{f}")), "--interval", "0.01"]
WRITER += ["--cycles", "300"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Processes:
    def __init__(self, store_url: str, home: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AIS_")}
        self.env.update(
            AIS_HOME=str(home),
            AIS_DATABASE_URL=store_url,
            AIS_RISK_HMAC_KEYS=f"k1:{SECRET}",
            AIS_CONFIG_DIR=str(ROOT / "config" / "btc-quoted"),  # the writer's bundled candles
            COLUMNS="200",
        )
        self.home = home
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def cli(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "interfaces.cli", *argv],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, name: str, *argv: str) -> Path:
        log = self.home / f"{name}.log"
        handle = log.open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "interfaces.cli", *argv],
            cwd=ROOT,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        handle.close()
        self.procs.append((proc, log))
        return log

    def wait_for(self, log: Path, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            content = log.read_text()
            if text in content:
                return content
            time.sleep(0.05)
        pytest.fail(f"{log.name}: no {text!r} within {timeout}s:\n{log.read_text()}")

    def stop(self) -> list[int]:
        for proc, _ in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = []
        for proc, log in self.procs:
            try:
                codes.append(proc.wait(timeout=20))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                pytest.fail(f"{log.name} did not stop on SIGTERM:\n{log.read_text()}")
        return codes

    def kill(self) -> None:
        for proc, _ in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
def test_projectors_and_apis_as_separate_processes_on_postgres(
    store_url: str, tmp_path: Path, read_models: ReadModels
) -> None:
    home = tmp_path / "home"
    procs = Processes(store_url, home)
    made = procs.cli("token", "create", "watcher", "--role", "viewer")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    api_ports = [free_port(), free_port()]
    try:
        projector_logs = []
        for i in (1, 2):
            projector_logs.append(
                procs.start(f"projector{i}", "project", "--follow", "--metrics-port", "0")
            )
            # One at a time until the read-model tables exist: SqlReadStore.prepare's
            # CREATE TABLE races between processes starting together on a fresh schema.
            procs.wait_for(projector_logs[-1], "/metrics")
        for i, port in enumerate(api_ports, 1):
            procs.start(f"api{i}", "serve", "--port", str(port), "--no-access-log")
        # The writer: a real trading loop, while four projectors compete for the same rows.
        writer = procs.start("writer", "run", "--mode", "paper", *WRITER)
        writer_proc = procs.procs[-1][0]
        assert writer_proc.wait(timeout=120) == 0, (home / "writer.log").read_text()
        head = read_models.source.head()
        placed = sum(
            1 for e in read_models.source.read(0, head + 1) if e.topic.endswith("Order.Placed")
        )
        assert placed >= 2, writer.read_text()  # the replayed bars made the loop trade

        metrics_urls = []
        for log in projector_logs:
            content = procs.wait_for(log, "/metrics")
            metrics_urls.append(content.split("metrics on ", 1)[1].split()[0])
        scraped = [caught_up(url, head) for url in metrics_urls]
        for name in ("ais_nav_quote", "ais_fills_total", "ais_orders_placed_total"):
            assert value(scraped[0], name) == value(scraped[1], name), name
        assert value(scraped[0], "ais_orders_placed_total") == placed

        headers = {"Authorization": f"Bearer {token}"}
        answers = []
        for port in api_ports:
            wait_healthy(port)
            base = f"http://127.0.0.1:{port}"
            answers.append(
                {
                    path: get(f"{base}{path}", headers, head)
                    for path in ("/v1/portfolio", "/v1/exposure", "/v1/orders?limit=500")
                }
            )
        assert answers[0] == answers[1]
        assert len(answers[0]["/v1/orders?limit=500"]["items"]) == placed
        # Projectors exit 0; uvicorn shuts down cleanly, then re-raises SIGTERM.
        codes = procs.stop()
        assert codes[:2] == [0, 0], [log.read_text()[-2000:] for _, log in procs.procs]
        for code, (_, log) in zip(codes[2:4], procs.procs[2:4], strict=True):  # APIs
            assert code in (0, -signal.SIGTERM), log.read_text()[-2000:]
            assert "Finished server process" in log.read_text()
    finally:
        procs.kill()

    verified = procs.cli("replay", "--verify", timeout=120)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "verified: live read models equal a rebuild from position 0" in verified.stdout
    for _, log in procs.procs:
        text = log.read_text()
        assert "Traceback" not in text, f"{log.name}:\n{text}"
        assert SECRET not in text


def caught_up(url: str, head: int, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        families = parse(httpx.get(url, timeout=10).text)
        lags = [s.value for s in families["ais_projection_lag_events"].samples]
        if value(families, "ais_event_log_head") >= head and lags and not any(lags):
            return families
        if time.monotonic() > deadline:
            pytest.fail(f"{url}: not caught up with {head}: lag {lags}")
        time.sleep(0.1)


def wait_healthy(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"API on port {port} never became healthy")


def get(url: str, headers: dict[str, str], head: int) -> Any:
    joiner = "&" if "?" in url else "?"
    answer = httpx.get(f"{url}{joiner}min_position={head}", headers=headers, timeout=15)
    assert answer.status_code == 200, answer.text
    return answer.json()
