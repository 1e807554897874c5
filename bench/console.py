"""Console page-load benchmark: `/` and the overview's API calls on a big log, warm server.

Run `.venv/bin/python bench/console.py [--quick] [--events N] [--out FILE]`. Prints a
table and ends with ONE JSON line: a list of `{name, value, unit, floor, ratio, target,
ok}`.

Setup. A temporary AIS_HOME on SQLite (the default store) gets a log of 1M events
(`--quick`: 20k) written the way bench/replay.py writes its logs (a template history made
with the real TradingApp, copied with fresh ids and dates), its read models are built
with `rebuild()` (what `ais replay` runs), a viewer token is made, and `ais serve` is
started as a subprocess (one worker, access log off), its projector following the log.

One page load is what a browser does for the console with a signed-in token: GET `/`,
then `/console/app.js` and `/console/console.css` side by side, then the overview's
calls side by side: `/v1/portfolio`, `/v1/exposure`, `/v1/risk/kill-switch`,
`/v1/reconciliation?limit=100` and `/readyz`. Wall time from the first request to the
last byte of the last answer, on one keep-alive HTTP/1.1 client (httpx, 6 connections
like a browser), after a warm-up of a few loads (a warm server: its caches, pages and
connections hot). Full bodies every time (no 304s), so the figure is an upper bound for
a browser that revalidates its cache.

Figures: `console_load_p50_ms`, `console_load_p95_ms` (target: p95 < 300 ms) and
`console_load_max_ms`; the floor of each is GET /healthz (no database), loaded the same
way in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the project importable
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from figures import Figure, percentile, publish  # noqa: E402
from replay import Template, record_template, write_log  # noqa: E402
from rich.console import Console  # noqa: E402

from adapters.persistence import eventsourcing_env  # noqa: E402
from adapters.read_store import SqlReadStore, engines  # noqa: E402
from adapters.settings import Settings  # noqa: E402
from interfaces.http.tokens import create_token, tokens_file  # noqa: E402
from projections.registry import all_projections  # noqa: E402
from projections.replay import rebuild  # noqa: E402

TARGET_P95_MS = 300.0
ASSETS = ("/console/app.js", "/console/console.css")
OVERVIEW = (
    "/v1/portfolio",
    "/v1/exposure",
    "/v1/risk/kill-switch",
    "/v1/reconciliation?limit=100",
    "/readyz",
)
HMAC_KEYS = "benchconsole:" + "c" * 48


def build_store(home: Path, events: int, lifecycles: int, console: Console) -> None:
    """The log (template copies) and its read models, as `ais replay` leaves them."""
    from adapters.event_log import StoredEventSource

    template = Template(record_template(lifecycles))
    env = eventsourcing_env(None, home)
    seconds = write_log(env, template, events, 8 << 20)
    console.print(f"wrote {events:,} events in {seconds:.1f} s", highlight=False)
    t0 = time.perf_counter()
    engine, schema = engines(None, home)
    store = SqlReadStore(engine, schema)
    source = StoredEventSource(env)
    try:
        rebuild(source, store, all_projections())
    finally:
        source.close()
        store.close()
    console.print(f"built the read models in {time.perf_counter() - t0:.1f} s", highlight=False)


async def page_load(client: httpx.AsyncClient, first: str, assets: tuple[str, ...],
                    calls: tuple[str, ...]) -> float:  # fmt: skip
    """Milliseconds for `first`, then `assets` together, then `calls` together."""
    t0 = time.perf_counter()
    for batch in ((first,), assets, calls):
        responses = await asyncio.gather(*(client.get(path) for path in batch))
        for response in responses:
            if response.status_code != 200:
                raise SystemExit(f"{response.request.url}: {response.status_code}")
    return (time.perf_counter() - t0) * 1000


async def measure(url: str, token: str, loads: int, warmup: int) -> dict[str, list[float]]:
    limits = httpx.Limits(max_connections=6, max_keepalive_connections=6)
    headers = {"Authorization": f"Bearer {token}"}
    shapes = {
        "console": ("/", ASSETS, OVERVIEW),
        "floor": ("/healthz", ("/healthz",) * len(ASSETS), ("/healthz",) * len(OVERVIEW)),
    }
    found: dict[str, list[float]] = {name: [] for name in shapes}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits,
                                 timeout=30) as client:  # fmt: skip
        for shape in shapes.values():
            for _ in range(warmup):
                await page_load(client, *shape)
        for _ in range(loads):  # interleaved, so drift spreads over both
            for name, shape in shapes.items():
                found[name].append(await page_load(client, *shape))
    return found


def serve(home: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIS_")}
    env.update(AIS_HOME=str(home), AIS_RISK_HMAC_KEYS=HMAC_KEYS)
    return subprocess.Popen(
        [sys.executable, "-m", "interfaces.cli", "serve", "--port", str(port),
         "--no-access-log", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def wait_ready(url: str, server: subprocess.Popen[bytes], head: int) -> None:
    """Ready, and every read model at the head (the projector has nothing left)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("ais serve exited")
        try:
            ready = httpx.get(f"{url}/readyz", timeout=5)
            if ready.status_code == 200 and ready.json()["position"] >= head:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("ais serve did not catch up within 300 s")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run(events: int, quick: bool, console: Console) -> list[Figure]:
    loads, warmup, lifecycles = (10, 3, 12) if quick else (100, 10, 60)
    with tempfile.TemporaryDirectory(prefix="ais-bench-console-") as tmp:
        home = Path(tmp) / "home"
        build_store(home, events, lifecycles, console)
        token = create_token(tokens_file(Settings(home=home)), "bench", "viewer", datetime.now(UTC))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = serve(home, port)
        try:
            wait_ready(url, server, events)
            found = asyncio.run(measure(url, token, loads, warmup))
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    page = sorted(found["console"])
    floor = sorted(found["floor"])
    figures = []
    for label, q in (("p50", 50.0), ("p95", 95.0), ("max", 100.0)):
        value, base = percentile(page, q), percentile(floor, q)
        target = TARGET_P95_MS if label == "p95" else None
        figures.append(
            Figure(
                f"console_load_{label}_ms",
                value,
                "ms",
                base,
                value / base if base else None,
                target,
                ok=target is None or value < target,
                note="page, assets, overview calls" + (f"; < {target:g} ms" if target else ""),
            )
        )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20k events, 10 loads")
    parser.add_argument("--events", type=int, help="log size (default 1M, quick 20k)")
    parser.add_argument("--out", type=Path, help="also write the JSON line here")
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    events = args.events or (20_000 if args.quick else 1_000_000)
    figures = run(events, args.quick, console)
    title = f"Console page load ({events:,} events, warm server)"
    return publish(console, figures, title, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
