"""Hostile input to the `ais` CLI: a corrupted store, traversal-looking and unwritable
export targets, a disk that fills up mid-export, SQL-looking and control-character text.
Each is one `error: ...` line and exit 1, and the stored log is byte-for-byte unchanged.

Most cases run in process (typer's runner, fast); the corrupted store and the full disk
run as real subprocesses, as a user would meet them.
"""

from __future__ import annotations

import hashlib
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapters.clock import SeededIds, SimulatedClock
from adapters.event_log import EventLog, log_digest
from adapters.persistence import eventsourcing_env
from adapters.settings import load_catalog, load_limits
from application.trading import TradingApp
from interfaces.cli import app as cli_app
from tests.conftest import CONFIG, KEYS, SECRET, START, start_session

ROOT = Path(__file__).resolve().parents[1]
KEY_ENV = {"AIS_RISK_HMAC_KEYS": f"k1:{SECRET}"}
SQL = "x'; DROP TABLE stored_events; --"


def environ(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIS_")}
    env.update({"AIS_HOME": str(home), "COLUMNS": "200", **extra})
    return env


def ais(
    *args: str,
    home: Path,
    extra: dict[str, str] | None = None,
    preexec: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interfaces.cli", *args],
        cwd=ROOT,
        env=environ(home, **(extra or {})),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=preexec,
    )


def invoke(*args: str, home: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """In process; an exception the CLI did not turn into an exit fails the test."""
    env = {k: None for k in os.environ if k.startswith("AIS_")}
    result = CliRunner().invoke(cli_app, list(args), env={**env, "AIS_HOME": str(home), **extra})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


def one_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for fragment in fragments:
        assert fragment in lines[0], lines
    return lines[0]


def seed_store(home: Path, marks: int = 5) -> None:
    """A SQLite store with a session and `marks` marks (a few events each)."""
    app = TradingApp(
        account_id="default",
        limits=load_limits(CONFIG / "risk.toml"),
        catalog=load_catalog(CONFIG / "instruments.toml"),
        keys=KEYS,
        clock=SimulatedClock(START),
        ids=SeededIds(1),
        env=eventsourcing_env(None, home),
    )
    try:
        start_session(app)
        for i in range(marks):
            app.observe_mark("BTC-USDT", Decimal(50000 + i))
    finally:
        app.close()


def log_state(home: Path) -> tuple[int, str]:
    """Head of the log and the digest of every stored record."""
    log = EventLog(eventsourcing_env(None, home))
    try:
        return log.recorder.max_notification_id() or 0, log_digest(log)
    finally:
        log.close()


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_corrupted_store_is_one_error_and_left_untouched(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    store = garbage / "ais.sqlite"
    store.write_bytes(hashlib.sha512(b"not a database").digest() * 1024)
    before = file_digest(store)
    for args in (["status"], ["replay"]):
        one_error(ais(*args, home=garbage, extra=KEY_ENV), str(store), "not an SQLite database")
    keys = tmp_path / "keys"
    assert invoke("keys", "init", "--dir", str(keys), home=tmp_path).returncode == 0
    audit_keys = {
        "AIS_AUDIT_KEY_FILE": str(keys / "audit-ed25519.pem"),
        "AIS_AUDIT_PUBLIC_KEY_FILE": str(keys / "audit-ed25519.pub.pem"),
    }
    for args in (
        ["audit", "verify", "--db"],
        ["audit", "export", "--out", str(tmp_path / "export")],
        ["audit", "seal"],
        ["kill", "--reason", "x"],
        ["project"],
    ):
        one_error(invoke(*args, home=garbage, **KEY_ENV, **audit_keys), "not an SQLite database")
    assert not (tmp_path / "export").exists()
    assert file_digest(store) == before
    assert sorted(p.name for p in garbage.iterdir()) == ["ais.sqlite"]
    # A real store whose pages were damaged: the header is right, the content is not.
    damaged = tmp_path / "damaged"
    seed_store(damaged, marks=40)
    data = bytearray((damaged / "ais.sqlite").read_bytes())
    for i in range(4096, len(data), 61):
        data[i] ^= 0x5A
    (damaged / "ais.sqlite").write_bytes(bytes(data))
    for name in ("ais.sqlite-wal", "ais.sqlite-shm"):
        (damaged / name).unlink(missing_ok=True)
    before = file_digest(damaged / "ais.sqlite")
    one_error(invoke("status", home=damaged, **KEY_ENV), "malformed")
    assert file_digest(damaged / "ais.sqlite") == before
    # replay rebuilds the (derived) read models, so it may write them before it reaches
    # a damaged page of the log; it still stops with one line.
    one_error(invoke("replay", home=damaged, **KEY_ENV), "malformed")


@pytest.mark.parametrize(
    ("relative", "why"),
    [
        ("../../victim", "not empty"),
        ("../" * 30 + "etc", "not empty"),
        ("../../victim/notes.txt", "not a directory"),
        ("../../link-to-victim", "not empty"),
    ],
)
def test_export_refuses_traversal_targets_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, relative: str, why: str
) -> None:
    home = tmp_path / "home"
    seed_store(home)
    assert invoke("keys", "init", home=home).returncode == 0
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "notes.txt").write_text("keep me\n")
    (tmp_path / "link-to-victim").symlink_to(victim)
    workdir = tmp_path / "a" / "b"
    workdir.mkdir(parents=True)
    monkeypatch.chdir(workdir)
    etc = sorted(os.listdir("/etc"))
    state = log_state(home)
    one_error(invoke("audit", "export", "--out", relative, home=home), why)
    assert sorted(os.listdir("/etc")) == etc
    assert sorted(p.name for p in victim.iterdir()) == ["notes.txt"]
    assert (victim / "notes.txt").read_text() == "keep me\n"
    assert not list(tmp_path.glob("**/*.partial"))
    assert log_state(home) == state
    fine = invoke("audit", "export", "--out", "../../fresh", home=home)
    assert fine.returncode == 0, fine.stderr
    assert (tmp_path / "fresh" / "manifest.json").exists()


def test_export_to_an_unwritable_target_leaves_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    seed_store(home)
    assert invoke("keys", "init", home=home).returncode == 0
    state = log_state(home)
    blocker = tmp_path / "plain-file"
    blocker.write_text("a file, not a folder\n")
    one_error(invoke("audit", "export", "--out", str(blocker / "export"), home=home), "not a dir")
    if os.geteuid() != 0:  # root writes through a read-only mode bit
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        one_error(invoke("audit", "export", "--out", str(locked / "x"), home=home), "denied")
        assert list(locked.iterdir()) == []
    assert blocker.read_text() == "a file, not a folder\n"
    assert log_state(home) == state


FULL_AT = 48 * 1024  # bytes any one file may reach in the "full disk" subprocess


def _small_disk() -> None:
    """preexec_fn: every file this process writes stops at FULL_AT bytes (EFBIG)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (FULL_AT, FULL_AT))


def test_a_disk_that_fills_up_mid_export_leaves_no_valid_looking_export(tmp_path: Path) -> None:
    home = tmp_path / "home"
    seed_store(home, marks=150)
    assert invoke("keys", "init", home=home).returncode == 0
    state = log_state(home)
    exports = tmp_path / "exports"
    exports.mkdir()
    out = exports / "full"
    args = ("audit", "export", "--out", str(out), "--workers", "0")
    result = ais(*args, home=home, preexec=_small_disk)
    one_error(result, "too large")
    assert not out.exists() and list(exports.iterdir()) == []  # no manifest, no partial
    assert log_state(home) == state
    # The same export without the limit works, and is larger than the limit allowed.
    whole = exports / "whole"
    done = invoke("audit", "export", "--out", str(whole), "--workers", "0", home=home)
    assert done.returncode == 0, done.stderr
    assert (whole / "events.ndjson").stat().st_size > FULL_AT
    verified = invoke("audit", "verify", str(whole), home=home)
    assert verified.returncode == 0, verified.stderr


def test_sql_looking_and_control_character_text_on_the_command_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    seed_store(home)
    head, _ = log_state(home)
    engaged = invoke("kill", "--reason", SQL, "--by", "o'brien; --", home=home, **KEY_ENV)
    assert engaged.returncode == 0, engaged.stderr
    status = invoke("status", home=home, **KEY_ENV)
    assert status.returncode == 0 and SQL in status.stdout
    state = log_state(home)
    assert state[0] > head
    for reason in ("\x1b[2J\x1b[31mcleared", "nul\x00", "\x07"):
        one_error(invoke("kill", "--reset", "--reason", reason, home=home, **KEY_ENV), "control")
    one_error(invoke("kill", "--reset", "--reason", "x" * 10_000, home=home, **KEY_ENV))
    tokens = home / "api-tokens.toml"
    one_error(invoke("token", "create", SQL, "--role", "operator", home=home), "token name")
    one_error(invoke("token", "create", "ok", "--role", "admin' OR '1'='1", home=home), "role")
    assert not tokens.exists()
    for capital in ("NaN", "Infinity", "1e400", "-1", "abc"):
        data = str(ROOT / "data" / "ETHBTC_5m.csv")
        one_error(invoke("backtest", "--data", data, "--capital", capital, home=home), "capital")
    assert not (home / "backtests").exists()
    assert log_state(home) == state
