"""`ais run --mode live` against the fake Binance, SIGKILLed again and again.

The loop runs as its own process (forked from a server that imported the CLI and ccxt
once, as in tests/test_projector_crash.py), trading the fake venue over real HTTP through
ccxt, while a Filler thread fills its resting orders. At seeded random moments it is
SIGKILLed -- while starting, resolving what the last one left open, deciding, between
`Submitted` and the request, mid-request, applying fills, canceling -- and restarted.
A last clean run (after the unknown-outcome window) settles what is left. Then:
orders at the venue are exactly the submitted Orders of the log, none twice and none
lost; every venue trade is applied exactly once; the desk's position is what the venue
holds; every state change carries a valid approval; and `ais replay --verify` passes.

The projector under SIGKILL is tests/test_projector_crash.py; the API under SIGKILL is
tests/reliability/test_api_crash.py. `make soak` runs this one longer (AIS_SOAK_KILLS).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.fake_exchange import running
from tests.reliability.venue import (
    LIVE_ARGV,
    ROOT,
    UNKNOWN_OUTCOME_SECONDS,
    Filler,
    feeds,
    live_config,
    loop_env,
    venue_matches_log,
)
from tests.test_projector_crash import run_cli

SEED = 20261129
KILLS = int(os.environ.get("AIS_SOAK_KILLS", "30"))
STARTED = " (live) for account "  # the loop's line once its session has started


def forkserver() -> multiprocessing.context.ForkServerContext:
    """A fork server with the CLI, ccxt, the gateway and the API imported (a superset of
    the projector crash test's preload: the server is one per pytest process)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(
        [
            "interfaces.cli",
            "tests.test_projector_crash",
            "adapters.exchange.ccxt_gateway",
            "adapters.market_data_ccxt",
            "interfaces.http.app",  # for tests/reliability/test_api_crash.py
            "uvicorn",
        ]
    )
    return context


def ais(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interfaces.cli", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_live_loop_killed_at_random_moments_loses_and_doubles_nothing(tmp_path: Path) -> None:
    began = time.monotonic()
    schedule = random.Random(SEED)
    config = live_config(tmp_path)
    long, flat, price = feeds(int(time.time() * 1000))
    log = tmp_path / "loop.log"
    context = forkserver()
    with running(balances={"USDT": "100000"}, prices={"BTCUSDT": str(price)}) as fake:
        fake.market_data = long
        env = loop_env(tmp_path / "home", fake, config, None)
        warm_up = context.Process(target=run_cli, args=(["--help"], env, os.devnull))
        warm_up.start()
        warm_up.join(timeout=120)
        assert warm_up.exitcode == 0
        with Filler(fake, SEED + 1) as filler:
            for round_ in range(KILLS):
                delay = schedule.uniform(0.2, 2.0)
                fake.market_data = long if schedule.random() < 0.6 else flat
                proc = context.Process(target=run_cli, args=(LIVE_ARGV, env, str(log)))
                proc.start()
                time.sleep(delay)
                assert proc.is_alive(), f"round {round_}: exited ({proc.exitcode}):\n" + (
                    log.read_text()[-3000:]
                )
                proc.kill()
                proc.join(timeout=30)
                assert proc.exitcode == -signal.SIGKILL
                proc.close()
        killed_at = time.monotonic()
        # A submission whose outcome the kill made unknown is decided after this window.
        time.sleep(UNKNOWN_OUTCOME_SECONDS)
        final = ais(env, *LIVE_ARGV, "--cycles", "3")
        assert final.returncode == 0, final.stdout + final.stderr
        tally = venue_matches_log(fake, env)

    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    started = text.count(STARTED)
    assert started >= KILLS // 2, f"only {started} of {KILLS} runs got to trading"
    assert tally.venue_orders >= KILLS // 6 and tally.trades >= KILLS // 6, tally  # it traded
    assert tally.approvals.tokens_verified > 0
    project = ais(env, "project")
    assert project.returncode == 0, project.stderr
    verified = ais(env, "replay", "--verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    print(
        f"{KILLS} kills ({started} after the session started) in {killed_at - began:.1f}s; "
        f"venue: {tally.venue_orders} orders, {tally.trades} trades ({filler.fills} by the "
        f"market); log: {tally.statuses}; {tally.approvals.tokens_verified} approvals "
        f"re-verified; {time.monotonic() - began:.1f}s in all"
    )
