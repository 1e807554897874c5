"""The event store goes away under a live trading loop, and comes back.

`ais run --mode live` trades the fake Binance with its PostgreSQL reached through a
proxy the test cuts (every connection dropped, new ones refused) for a few seconds, twice,
while the market keeps filling its resting orders. While cut, the loop must fail closed
(not one order request reaches the venue: nothing is sent that could not be recorded
first), say so (an error line, a critical EventStoreUnavailable alert,
`ais_event_store_up` 0), and keep running; once restored it resumes by itself (an
EventStoreRecovered alert, the gauge back to 1, new events recorded) and stops cleanly.
Afterwards the venue and the log agree: no order lost or sent twice, every fill applied
exactly once, every change approved.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import psycopg
import pytest

from adapters.lease import LeaseHeld, acquire_lease, lease_key
from tests.conftest import PG_DSN
from tests.fake_exchange import running
from tests.reliability.pg_proxy import PgProxy
from tests.reliability.venue import (
    LIVE_ARGV,
    Filler,
    feeds,
    live_config,
    loop_env,
    venue_matches_log,
)
from tests.test_multiprocess import free_port
from tests.test_run import start, wait_for

pytestmark = pytest.mark.postgres

# Seconds each cut lasts at least; it lasts until the loop has noticed (a cut pool needs
# POSTGRES_CONNECT_TIMEOUT, 5 s, to give up on a new connection).
OUTAGES = (3.0, 1.5)
IN_FLIGHT = 0.3  # a request already past its write-ahead when the cut came may still go
ORDER = ("POST", "/api/v3/order")


def scrape(port: int, name: str) -> float:
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} on /metrics")


def store_up(port: int) -> float:
    return scrape(port, "ais_event_store_up")


def steps(port: int) -> float:
    return scrape(port, "ais_cycle_duration_seconds_count")


def wait_count(log: Path, text: str, n: int, proc: subprocess.Popen[bytes]) -> None:
    """Until `text` is in the log `n` times (the n-th outage, not an earlier one)."""
    deadline = time.monotonic() + 30
    while log.read_text().count(text) < n:
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"no {text!r} #{n}:\n{log.read_text()[-3000:]}"
        time.sleep(0.05)


def head(env: dict[str, str]) -> int:
    from adapters.event_log import EventLog
    from adapters.persistence import eventsourcing_env

    log = EventLog(eventsourcing_env(env["AIS_DATABASE_URL"], Path(env["AIS_HOME"])))
    try:
        return log.recorder.max_notification_id() or 0
    finally:
        log.close()


def test_loop_fails_closed_while_the_store_is_cut_and_resumes(pg_url: str, tmp_path: Path) -> None:
    server = urlparse(PG_DSN)
    long, _, price = feeds(int(time.time() * 1000))
    metrics_port = free_port()
    log = tmp_path / "loop.log"
    with (
        PgProxy((server.hostname or "127.0.0.1", server.port or 5432)) as proxy,
        running(balances={"USDT": "100000"}, prices={"BTCUSDT": str(price)}) as fake,
    ):
        fake.market_data = long
        env = loop_env(tmp_path / "home", fake, live_config(tmp_path), pg_url)
        direct = dict(env)
        netloc = f"{server.hostname}:{server.port or 5432}"
        env["AIS_DATABASE_URL"] = pg_url.replace(netloc, f"127.0.0.1:{proxy.port}", 1)
        # Idle between steps most of the time, as a loop stepping every minute is.
        argv = [*LIVE_ARGV, "--metrics-port", str(metrics_port), "--interval", "0.5"]
        with Filler(fake, 11):
            proc = start(env, log, *argv)
            try:
                wait_for(log, " (live) for account ", proc, timeout=60)
                time.sleep(1.5)  # trading: an order placed, fills coming in
                measured = []
                for n, seconds in enumerate(OUTAGES, 1):
                    before = head(direct)
                    proxy.cut()
                    began = time.monotonic()
                    time.sleep(IN_FLIGHT)
                    sent = fake.count(*ORDER)
                    wait_count(log, "EventStoreUnavailable [critical]", n, proc)
                    assert store_up(metrics_port) == 0
                    time.sleep(max(0.0, began + seconds - time.monotonic()))
                    assert fake.count(*ORDER) == sent, "an order left while nothing was recorded"
                    assert head(direct) <= before + 2  # at most the in-flight step's writes
                    proxy.restore()
                    measured.append(time.monotonic() - began)
                    wait_count(log, "EventStoreRecovered [info]", n, proc)
                    assert store_up(metrics_port) == 1
                    stepped = steps(metrics_port)
                    time.sleep(1.5)
                    assert steps(metrics_port) > stepped, "no step since the store came back"
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]
                assert head(direct) > before  # the session's end, at least, was recorded
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        tally = venue_matches_log(fake, direct)

    text = log.read_text()
    assert text.count("EventStoreUnavailable [critical]") == len(OUTAGES)
    assert text.count("EventStoreRecovered [info]") == len(OUTAGES)
    assert "ended after" in text and "Traceback" not in text
    assert tally.venue_orders >= 1 and tally.approvals.tokens_verified > 0
    print(
        f"outages {[f'{s:.1f}s' for s in measured]}, {proxy.cut_connections} connections cut; "
        f"venue: {tally.venue_orders} orders, {tally.trades} trades; log: {tally.statuses}"
    )


def terminate_holder(key: int) -> int:
    """pg_terminate_backend for whoever holds the advisory lock `key` (and no one else)."""
    classid, objid = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
            "AND classid = %s AND objid = %s AND objsubid = 1 AND granted",
            (classid, objid),
        ).fetchall()
    return len(rows)


def test_a_lease_dropped_by_an_outage_is_taken_again_or_reported_lost(
    pg_url: str, tmp_path: Path
) -> None:
    """The loop checks its lease before every step (interfaces/cli_run.py)."""
    key = lease_key(parse_qs(urlparse(pg_url).query)["schema"][0], "acct")
    with acquire_lease("acct", pg_url, tmp_path) as lease:
        lease.check()  # held: nothing happens
        assert terminate_holder(key) == 1
        lease.check()  # the connection went; the lock was free, so it is ours again
        assert terminate_holder(key) == 1
        with acquire_lease("acct", pg_url, tmp_path):  # another loop was quicker
            with pytest.raises(LeaseHeld):
                lease.check()
            with pytest.raises(LeaseHeld):
                acquire_lease("acct", pg_url, tmp_path)


def test_one_database_under_two_host_names_has_one_lease(pg_url: str, tmp_path: Path) -> None:
    """Advisory locks belong to the database, so the lease key must not name the host."""
    other = pg_url.replace("127.0.0.1", "localhost", 1)
    assert other != pg_url
    with acquire_lease("acct", pg_url, tmp_path), pytest.raises(LeaseHeld):
        acquire_lease("acct", other, tmp_path)
