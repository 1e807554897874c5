"""`ais token create|list|revoke` and `ais serve` as a user runs them: real subprocesses."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from interfaces.cli import app as cli_app
from interfaces.http.tokens import hash_token, load_tokens

ROOT = Path(__file__).resolve().parents[1]


def environ(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIS_")}
    env.update({"AIS_HOME": str(home), "COLUMNS": "200", **extra})
    return env


def ais(*args: str, home: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interfaces.cli", *args],
        cwd=ROOT,
        env=environ(home, **extra),
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line_error(result: subprocess.CompletedProcess[str], text: str) -> None:
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], lines
    assert "Traceback" not in result.stderr


def invoke(*args: str, home: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """The same CLI in process (typer's runner): for the many error cases, fast."""
    result = CliRunner().invoke(cli_app, list(args), env={"AIS_HOME": str(home), **extra})
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


def test_token_create_prints_once_and_stores_only_the_hash(tmp_path: Path) -> None:
    created = ais("token", "create", "ops-alice", "--role", "operator", home=tmp_path)
    assert created.returncode == 0, created.stderr
    [token] = created.stdout.splitlines()
    assert token.startswith("ais_") and len(token) >= 40
    assert "shown only once" in created.stderr
    path = tmp_path / "api-tokens.toml"
    assert token not in path.read_text()
    stored = load_tokens(path)["ops-alice"]
    assert (stored.role, stored.sha256) == ("operator", hash_token(token))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    one_line_error(invoke("token", "create", "ops-alice", "--role", "viewer", home=tmp_path),
                   "already exists")

    one_line_error(invoke("token", "create", "bob", "--role", "admin", home=tmp_path), "role")
    one_line_error(invoke("token", "create", "bob", home=tmp_path), "--role is required")
    one_line_error(invoke("token", "create", "b b", "--role", "viewer", home=tmp_path), "name")
    elsewhere = tmp_path / "elsewhere" / "tokens.toml"
    other = invoke("token", "create", "aud", "--role", "auditor", home=tmp_path,
                   AIS_API_TOKENS_FILE=str(elsewhere))
    assert other.returncode == 0 and load_tokens(elsewhere)["aud"].role == "auditor"
    listed = invoke("token", "list", home=tmp_path)
    assert listed.stdout.split("\t")[:2] == ["ops-alice", "operator"]
    assert token not in listed.stdout
    assert invoke("token", "revoke", "ops-alice", home=tmp_path).returncode == 0
    one_line_error(invoke("token", "revoke", "ops-alice", home=tmp_path), "no token named")


def test_serve_answers_with_the_projector_running_and_rejects_bad_input(tmp_path: Path) -> None:
    one_line_error(invoke("serve", "--port", "70000", home=tmp_path), "--port")
    (tmp_path / "api-tokens.toml").write_text("tokens = [")
    one_line_error(invoke("serve", home=tmp_path), "api-tokens.toml")
    (tmp_path / "api-tokens.toml").unlink()

    keys = "k1:" + "k" * 40
    token = ais("token", "create", "ops", "--role", "operator", home=tmp_path).stdout.strip()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "interfaces.cli", "serve", "--port", str(port),
         "--no-access-log"],
        cwd=ROOT,
        env=environ(tmp_path, AIS_RISK_HMAC_KEYS=keys),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {token}"}
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server not ready"
            time.sleep(0.1)
        started = httpx.post(f"{base}/v1/sessions", headers=auth,
                             json={"mode": "paper", "starting_capital": "5000"})
        assert started.status_code == 201, started.text
        # The in-process projector makes the write readable; min_position waits for it.
        at = started.json()["position"]
        sessions = httpx.get(f"{base}/v1/sessions?min_position={at}", headers=auth)
        assert sessions.status_code == 200
        assert [s["session_id"] for s in sessions.json()["items"]] == [
            started.json()["session_id"]
        ]
        assert int(sessions.headers["x-ais-position"]) >= at
        portfolio = httpx.get(f"{base}/v1/portfolio?min_position={at}", headers=auth).json()
        assert portfolio["nav"] == "5000"
        assert httpx.get(f"{base}/v1/portfolio").status_code == 401
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        finally:
            if server.poll() is None:
                server.kill()
            if server.stderr is not None:
                server.stderr.close()
    assert server.returncode == 0
