"""HTTP read-API benchmark: `ais serve` against a bare FastAPI endpoint, same run.

Run `.venv/bin/python bench/http_api.py [--quick] [--out FILE]`. (Not `bench/http.py`:
run as a script, that name would shadow the standard library's `http` package for
uvicorn and httpx, and mypy would see a second `http` module.) Prints a table and ends with
ONE JSON line: a list of `{name, value, unit, floor, ratio, target, ok}`.

Setup. A temporary AIS_HOME on SQLite (the default store) is seeded in process through
the real `TradingApp`: a funded paper session, BTC and ETH marks, and 200 orders (50 in
`--quick`) of which some are filled and some cancelled, then projected. A viewer token
is made with the same code as `ais token create`. Two servers are started as
subprocesses on 127.0.0.1, each on a free port, both with `uvicorn.run(app, ...)`, one
worker, access log off, log level warning:

* `ais serve` (`python -m interfaces.cli serve`): the real app, with its projector
  following the log in a background thread;
* the floor: this file with `--serve-bare`, a FastAPI app with one `async def` endpoint
  returning a constant small JSON object (no auth, no database, no thread pool).

Load. `CONCURRENCY` keep-alive HTTP/1.1 connections from one asyncio process send GETs
back to back, so `CONCURRENCY` requests are in flight. The client is a minimal one on
asyncio streams (see `Connection`): httpx's ~1 ms of client CPU per request made the load
generator the bottleneck. Latency is measured per request in the client (send to last
byte); the client's CPU share is printed so a client-bound run is visible. Each
target is measured in slices interleaved with the others (bare, portfolio, orders, bare,
...), each slice a fixed time (full: 6 rounds of 1.5 s per target), after a warm-up, so
drift and noise from other processes spread over all of them.

Figures:
* `http_bare_rps`, `http_bare_p50_ms`, `http_bare_p99_ms`: the floor.
* `http_portfolio_rps`: GET /v1/portfolio (bearer auth, role check, one read
  transaction: tracking position + summary row, response model, X-AIS-Position);
  ratio = its req/s / bare req/s, target >= 0.5. `http_portfolio_p99_ms`: target
  <= 20 ms. (Targets are reported; they never fail the run.)
* `http_orders_*`: GET /v1/orders, a first page of 100 orders (keyset query, 100 rows of
  21 columns validated and serialised); ratio against bare, no target.

The client shares the machine with the servers (two cores here): its cost per request
is the same for every target, and it is included in every latency.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the project importable
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from figures import Figure, percentile, publish  # noqa: E402
from rich.console import Console  # noqa: E402

HMAC_KEYS = "benchhttp:" + "h" * 48
START = datetime(2024, 1, 2, 9, 0, tzinfo=UTC)
CONCURRENCY = 8
PORTFOLIO_RATIO_TARGET = 0.5
PORTFOLIO_P99_TARGET_MS = 20.0


@dataclasses.dataclass(frozen=True)
class Sizes:
    orders: int
    warmup_seconds: float  # per target, before measuring
    slice_seconds: float  # one measured slice of one target
    slices: int  # rounds; each round measures every target once


QUICK = Sizes(orders=30, warmup_seconds=0.3, slice_seconds=0.4, slices=3)
FULL = Sizes(orders=200, warmup_seconds=2.0, slice_seconds=1.5, slices=6)


# --- the floor server ---------------------------------------------------------------------
def serve_bare(port: int) -> None:
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/bare")
    async def bare() -> dict[str, Any]:
        return {"status": "ok", "position": 0}

    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")


# --- setup ----------------------------------------------------------------------------------
def seed(home: Path, orders: int) -> int:
    """A session, marks and `orders` orders (some filled, some cancelled); returns head."""
    from pydantic import SecretStr

    from adapters.clock import SeededIds, SimulatedClock
    from adapters.settings import Settings
    from domain.commands import CancelOrder, PlaceOrder, StartSession
    from domain.values import Mode, OrderType, Side
    from interfaces.bootstrap import build_app
    from interfaces.read_side import read_side

    settings = Settings(home=home, database_url=None, risk_hmac_keys=SecretStr(HMAC_KEYS))
    clock = SimulatedClock(START)
    app = build_app(settings, clock=clock, ids=SeededIds(11))
    try:
        session_id = app.ids()
        app.execute(
            StartSession(
                session_id=session_id,
                mode=Mode.PAPER,
                starting_capital=Decimal("1000000"),
                config_digest="bench",
            )
        )
        for n in range(orders):
            clock.advance(2.5)  # inside the order-rate limit (30 per 60 s)
            if n % 10 == 0:
                app.observe_mark("BTC-USDT", Decimal("50000") + n)
                app.observe_mark("ETH-USDT", Decimal("3000") + n)
            order_id = app.ids()
            price = Decimal("49900") + n
            quantity = Decimal("0.001") + Decimal(n % 50) * Decimal("0.00001")
            app.execute(
                PlaceOrder(
                    order_id=order_id,
                    session_id=session_id,
                    instrument="BTC-USDT",
                    side=Side.BUY,
                    order_type=OrderType.LIMIT,
                    quantity=quantity,
                    limit_price=price,
                )
            )
            if n % 3 == 0:
                app.record_fill(
                    order_id,
                    trade_id=f"t{n}",
                    quantity=quantity,
                    price=price,
                    fee=Decimal("0.01"),
                    filled_at=clock(),
                )
            elif n % 3 == 1:
                app.execute(CancelOrder(order_id=order_id, reason="bench"))
        head = app.recorder.max_notification_id() or 0
    finally:
        app.close()
    with read_side(settings) as side:
        side.projector().run_once()
    return head


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def servers(
    *specs: tuple[list[str], str, dict[str, str]], env: dict[str, str]
) -> Iterator[list[int]]:
    """Start every (command, ready URL, headers) at once; stop them all at the end.

    Their stderr (one JSON log line per request) goes to files: a pipe nobody reads
    fills up and blocks the server mid-run.
    """
    logs = [tempfile.TemporaryFile() for _ in specs]  # noqa: SIM115 (closed in finally)
    processes = [
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
        for (command, _, _), log in zip(specs, logs, strict=True)
    ]
    try:
        deadline = time.monotonic() + 60
        for process, log, (command, ready_url, headers) in zip(processes, logs, specs, strict=True):
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    err = log.read().decode(errors="replace")
                    raise SystemExit(f"server {command[1:4]} exited: {err.strip()[-500:]}")
                try:
                    if httpx.get(ready_url, headers=headers, timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"server {command[1:4]} not ready after 60 s")
                time.sleep(0.1)
        yield [p.pid for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in logs:
            log.close()


# --- load ------------------------------------------------------------------------------------
@dataclasses.dataclass
class Target:
    name: str
    url: str
    headers: dict[str, str]
    latencies_ms: list[float] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    client_cpu: float = 0.0
    server_pid: int | None = None
    server_cpu: float = 0.0
    requests: int = 0
    errors: int = 0


def process_cpu(pid: int | None) -> float:
    """User + system CPU seconds a process has used (Linux /proc), 0 when unknown."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Connection:
    """A minimal HTTP/1.1 keep-alive client for GETs, on asyncio streams.

    httpx costs around a millisecond of client CPU per request, which on a small machine
    makes the load generator, not the server, the bottleneck and squeezes every ratio
    towards 1. This sends a fixed request and reads status, Content-Length and body,
    about 50 us per request; httpx is still used for setup and readiness.
    """

    def __init__(self, host: str, port: int, path: str, headers: dict[str, str]) -> None:
        self.address = (host, port)
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Accept: application/json"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.request = ("\r\n".join(lines) + "\r\n\r\n").encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(*self.address)
        assert self.reader is not None
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
            elif name.strip().lower() == b"transfer-encoding":
                raise SystemExit("bench client: chunked responses are not supported")
        if length is None:
            raise SystemExit("bench client: response without Content-Length")
        await self.reader.readexactly(length)
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()


async def _slice(target: Target, seconds: float, record: bool) -> None:
    latencies: list[float] = []
    errors = 0
    url = httpx.URL(target.url)
    path = url.raw_path.decode()
    connections = [
        Connection(url.host, url.port or 80, path, target.headers) for _ in range(CONCURRENCY)
    ]

    async def worker(connection: Connection) -> None:
        nonlocal errors
        while time.perf_counter() < until:
            t0 = time.perf_counter()
            status = await connection.get()
            latencies.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                errors += 1

    for connection in connections:  # connect outside the timed region
        connection.reader, connection.writer = await asyncio.open_connection(*connection.address)
    server0 = process_cpu(target.server_pid)
    cpu0, t0 = time.process_time(), time.perf_counter()
    until = t0 + seconds
    try:
        await asyncio.gather(*(worker(c) for c in connections))
    finally:
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        server_cpu = process_cpu(target.server_pid) - server0
        for connection in connections:
            await connection.close()
    if record:
        target.latencies_ms += latencies
        target.seconds += elapsed
        target.client_cpu += cpu
        target.server_cpu += server_cpu
        target.requests += len(latencies)
        target.errors += errors


async def measure(targets: list[Target], sizes: Sizes) -> None:
    for target in targets:
        await _slice(target, sizes.warmup_seconds, record=False)
    for _ in range(sizes.slices):
        for target in targets:
            await _slice(target, sizes.slice_seconds, record=True)


def figures_for(targets: dict[str, Target]) -> list[Figure]:
    bare = targets["bare"]
    bare_rps = bare.requests / bare.seconds
    bare_sorted = sorted(bare.latencies_ms)
    bare_lat = (percentile(bare_sorted, 50), percentile(bare_sorted, 99))
    bare_cpu_us = bare.server_cpu / bare.requests * 1e6
    figures: list[Figure] = []
    for key, target in targets.items():
        lat = sorted(target.latencies_ms)
        rps = target.requests / target.seconds
        p50, p99 = percentile(lat, 50), percentile(lat, 99)
        cpu_us = target.server_cpu / target.requests * 1e6
        if key == "bare":
            figures += [
                Figure("http_bare_rps", rps, "req/s", note="floor: async FastAPI endpoint"),
                Figure("http_bare_p50_ms", p50, "ms"),
                Figure("http_bare_p99_ms", p99, "ms"),
                Figure(
                    "http_bare_server_cpu_us",
                    cpu_us,
                    "us/req",
                    note="server process CPU per request",
                ),
            ]
            continue
        target_ratio = PORTFOLIO_RATIO_TARGET if key == "portfolio" else None
        target_p99 = PORTFOLIO_P99_TARGET_MS if key == "portfolio" else None
        path = "/" + target.url.split("/", 3)[-1]
        figures += [
            Figure(
                f"http_{key}_rps",
                rps,
                "req/s",
                bare_rps,
                rps / bare_rps,
                target_ratio,
                ok=target_ratio is None or rps / bare_rps >= target_ratio,
                note=f"GET {path} req/s ÷ bare req/s",
            ),
            Figure(
                f"http_{key}_p50_ms",
                p50,
                "ms",
                bare_lat[0],
                bare_lat[0] / p50,
                note=f"GET {path}; ratio = bare p50 ÷ this",
            ),
            Figure(
                f"http_{key}_p99_ms",
                p99,
                "ms",
                bare_lat[1],
                bare_lat[1] / p99,
                target=target_p99,
                ok=target_p99 is None or p99 <= target_p99,
                note="" if target_p99 is None else f"target p99 <= {target_p99:g} ms",
            ),
            Figure(
                f"http_{key}_server_cpu_us",
                cpu_us,
                "us/req",
                bare_cpu_us,
                bare_cpu_us / cpu_us if cpu_us else None,
                note="server CPU per request; ratio = bare ÷ this",
            ),
        ]
    return figures


# --- output ------------------------------------------------------------------------------------
def run(sizes: Sizes, console: Console) -> tuple[list[Figure], dict[str, Any]]:
    from interfaces.http.tokens import create_token

    with tempfile.TemporaryDirectory(prefix="ais-bench-http-") as tmp:
        home = Path(tmp) / "home"
        head = seed(home, sizes.orders)
        token = create_token(home / "api-tokens.toml", "bench", "viewer", START)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIS_")}
        env.update(
            {"AIS_HOME": str(home), "AIS_RISK_HMAC_KEYS": HMAC_KEYS, "PYTHONPATH": str(ROOT)}
        )
        auth = {"Authorization": f"Bearer {token}"}
        ais_port, bare_port = free_port(), free_port()
        ais = [
            sys.executable,
            "-m",
            "interfaces.cli",
            "serve",
            "--port",
            str(ais_port),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        bare = [sys.executable, str(Path(__file__).resolve()), "--serve-bare", str(bare_port)]
        base = f"http://127.0.0.1:{ais_port}"
        with servers(
            (ais, f"{base}/v1/portfolio?min_position={head}", auth),
            (bare, f"http://127.0.0.1:{bare_port}/bare", {}),
            env=env,
        ) as pids:
            targets = {
                "bare": Target(
                    "bare", f"http://127.0.0.1:{bare_port}/bare", {}, server_pid=pids[1]
                ),
                "portfolio": Target("portfolio", f"{base}/v1/portfolio", auth, server_pid=pids[0]),
                "orders": Target("orders", f"{base}/v1/orders", auth, server_pid=pids[0]),
            }
            sample = httpx.get(f"{base}/v1/orders", headers=auth).json()
            asyncio.run(measure(list(targets.values()), sizes))
    errors = {k: t.errors for k, t in targets.items() if t.errors}
    if errors:
        raise SystemExit(f"non-200 answers during the run: {errors}")
    info = {
        "head": head,
        "orders_per_page": len(sample["items"]),
        "requests": {k: t.requests for k, t in targets.items()},
        "client_cpu": {k: t.client_cpu / t.seconds for k, t in targets.items()},
    }
    return figures_for(targets), info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small counts (smoke test)")
    parser.add_argument("--out", type=Path, help="also write the JSON list to this file")
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return 0
    sizes = QUICK if args.quick else FULL
    console = Console(width=max(140, Console().width))
    started = time.perf_counter()
    figures, info = run(sizes, console)
    console.print(
        f"seeded {info['head']} events; /v1/orders page of {info['orders_per_page']} orders; "
        f"{CONCURRENCY} concurrent connections; requests measured: {info['requests']}; "
        "load generator CPU share of wall time: "
        + ", ".join(f"{k} {v:.0%}" for k, v in info["client_cpu"].items()),
        highlight=False,
    )
    mode = "quick" if args.quick else "full"
    return publish(
        console,
        figures,
        f"AIS HTTP read API ({mode}, {time.perf_counter() - started:.1f} s)",
        args.out,
    )


if __name__ == "__main__":
    raise SystemExit(main())
