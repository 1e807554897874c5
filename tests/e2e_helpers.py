"""What the end-to-end tests share: `ais` as a user runs it (a real OS process on a
throw-away AIS_HOME), `ais serve` on a free port, and reading pages of the HTTP API."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
CLI = (sys.executable, "-m", "interfaces.cli")


def environ(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any AIS_ setting, plus AIS_HOME and `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIS_")}
    env.update({"AIS_HOME": str(home), "COLUMNS": "200", **(extra or {})})
    return env


def ais(
    *args: str, home: Path, extra: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `ais ARGS` to completion; it must exit 0."""
    result = subprocess.run(
        [*CLI, *args],
        cwd=ROOT,
        env=environ(home, extra),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-2000:])
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(home: Path, extra: Mapping[str, str] | None = None) -> Iterator[httpx.Client]:
    """`ais serve` on a free port, ready (`/readyz`); a client for it; stopped after."""
    port = free_port()
    server = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--no-access-log", "--log-level", "warning"],
        cwd=ROOT,
        env=environ(home, extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
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
            yield client
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def all_items(
    client: httpx.Client, path: str, auth: dict[str, str], at: int, **filters: str
) -> list[dict[str, Any]]:
    """Every item of a cursor-paged read, as of log position `at` or later."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 500, "min_position": at, **filters}
        if cursor:
            params["cursor"] = cursor
        page = client.get(path, headers=auth, params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if not cursor:
            return items


def export_lines(
    client: httpx.Client, auth: dict[str, str], params: Mapping[str, int] | None = None
) -> list[str]:
    """The lines of `GET /v1/audit/export` (streamed NDJSON; `params`: from, to)."""
    with client.stream("GET", "/v1/audit/export", headers=auth, params=params) as response:
        assert response.status_code == 200, response.read()
        return [line for line in response.iter_lines() if line]
