"""`ais run` as a real OS process: a bounded paper session on replayed bars, the
one-loop-per-account lease (SQLite flock, PostgreSQL advisory lock), a clean SIGTERM."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import SECRET

ROOT = Path(__file__).resolve().parents[1]
DATA = ["--data", "data/ETHBTC_5m.csv", "--data", "data/XMRBTC_5m.csv"]
HELD = "account default is already traded by another process"


def environment(home: Path, store_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIS_")}
    env.update(AIS_HOME=str(home), AIS_RISK_HMAC_KEYS=f"k1:{SECRET}", COLUMNS="200")
    if store_url:
        env["AIS_DATABASE_URL"] = store_url
    return env


def ais(env: dict[str, str], *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interfaces.cli", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start(env: dict[str, str], log: Path, *argv: str) -> subprocess.Popen[bytes]:
    with log.open("w") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "interfaces.cli", *argv],
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )


def wait_for(log: Path, text: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text():
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    pytest.fail(f"no {text!r} within {timeout}s:\n{log.read_text()}")


def topics(home: Path) -> dict[str, int]:
    with sqlite3.connect(home / "ais.sqlite") as conn:
        rows = conn.execute("SELECT topic, COUNT(*) FROM stored_events GROUP BY topic")
        return {topic.rsplit(".", 1)[-1]: n for topic, n in rows}


def test_bounded_paper_run_records_marks_and_a_session(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = environment(home, None)
    done = ais(env, "run", "--mode", "paper", *DATA, "--interval", "0.05", "--cycles", "40")
    assert done.returncode == 0, done.stderr
    assert "ended after 40 steps" in done.stdout.replace("\n", " ")
    seen = topics(home)
    assert seen.get("MarkObserved", 0) >= 40  # two instruments, a new bar each step
    assert seen.get("Started") == 1
    assert seen.get("StatusChanged") == 1  # the session ended
    assert seen.get("CycleDecided", 0) >= 3  # every 12 steps, from a full lookback
    verified = ais(env, "replay", "--verify")
    assert verified.returncode == 0, verified.stderr
    assert "verified" in verified.stdout


def test_bad_mode_inputs_fail_with_one_line(tmp_path: Path) -> None:
    env = environment(tmp_path / "home", None)
    if not (ROOT / "adapters" / "market_data_ccxt.py").exists():
        shadow = ais(env, "run", "--mode", "shadow", "--cycles", "1")
        assert shadow.returncode == 1
        assert shadow.stderr.strip() == "error: shadow/live need the ccxt market data source"
    backtest = ais(env, "run", "--mode", "backtest")
    assert backtest.returncode == 1
    assert backtest.stderr.strip() == "error: backtest needs --data"


@pytest.mark.parametrize(
    "store_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_one_loop_per_account_and_a_clean_sigterm(store_url: str | None, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = environment(home, store_url)
    log = tmp_path / "first.log"
    first = start(
        env, log, "run", "--mode", "paper", *DATA, "--interval", "0.1", "--metrics-port", "0"
    )
    try:
        wait_for(log, "session ", first)
        url = log.read_text().split("metrics ", 1)[1].split()[0]
        time.sleep(0.3)
        scraped = httpx.get(url, timeout=10).text
        assert "ais_cycle_duration_seconds_count" in scraped  # the loop's own instruments
        second = ais(env, "run", "--mode", "paper", *DATA, "--interval", "0.1", "--cycles", "1")
        assert second.returncode == 1, second.stdout
        assert second.stderr.strip() == f"error: {HELD}"
        assert first.poll() is None  # the first process trades on
        time.sleep(0.3)
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=20) == 0, log.read_text()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    output = log.read_text().replace("\n", " ")
    assert "stopped by SIGTERM" in output, output
    if store_url is not None:
        return
    assert topics(home).get("StatusChanged") == 1  # the session ended
    again = ais(env, "run", "--mode", "paper", *DATA, "--interval", "0", "--cycles", "2")
    assert again.returncode == 0, again.stderr  # the lease went with the process


def venue_config(tmp_path: Path) -> Path:
    """The bundled risk, reconciliation and exchange config, trading only BTC-USDT (what the
    fake serves)."""
    config = tmp_path / "config"
    config.mkdir()
    for name in ("risk.toml", "reconciliation.toml"):
        (config / name).write_text((ROOT / "config" / name).read_text())
    (config / "exchange.toml").write_text(
        (ROOT / "config" / "exchange.toml")
        .read_text()
        .replace("timeout_ms = 10000", "timeout_ms = 2000")
        .replace("retries = 3", "retries = 0")
    )
    instruments = (ROOT / "config" / "instruments.toml").read_text()
    (config / "instruments.toml").write_text(instruments.split("[instruments.ETH-USDT]")[0])
    return config


@pytest.mark.parametrize("mode", ["shadow", "live"])
def test_shadow_and_live_run_against_a_fake_venue(mode: str, tmp_path: Path) -> None:
    from tests.fake_exchange import API_KEY, running
    from tests.fake_exchange import SECRET as VENUE_SECRET

    home = tmp_path / "home"
    env = environment(home, None)
    config = venue_config(tmp_path)
    argv = ("run", "--mode", mode, "--config-dir", str(config), "--timeframe", "1m")
    if mode == "shadow":  # no credentials: the real account cannot be read
        refused = ais(env, *argv, "--cycles", "1")
        assert refused.returncode == 1
        assert refused.stderr.startswith("error: shadow reads the real account")
    with running(balances={"USDT": "1234.5"}) as fake:
        env.update(
            AIS_EXCHANGE_BASE_URL=fake.base_url,
            AIS_EXCHANGE_API_KEY=API_KEY,
            AIS_EXCHANGE_API_SECRET=VENUE_SECRET,
        )
        done = ais(env, *argv, "--interval", "0", "--cycles", "3")
    assert done.returncode == 0, done.stderr
    assert "ended after" in done.stdout, done.stdout
    seen = topics(home)
    assert seen.get("Started") == 1 and seen.get("StatusChanged") == 1
    with sqlite3.connect(home / "ais.sqlite") as conn:
        started = [
            bytes(state).decode()
            for (state,) in conn.execute(
                "SELECT state FROM stored_events WHERE topic LIKE '%TradingSession.Started'"
            )
        ]
    assert "1234.5" in started[0]  # the session starts from the real account's quote balance
    assert f'"{mode}"' in started[0]
