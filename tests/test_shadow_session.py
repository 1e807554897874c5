"""Shadow against the fake Binance (issue 6, done-when 4): `ais run --mode shadow` reads the
real account and trades on the paper venue; each snapshot of the real account is judged
against its baseline, so paper fills never break it, and a change made at the venue
behind AIS's back drifts, then breaks and engages the kill switch. Replays agree."""

from __future__ import annotations

import io
import signal
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from rich.console import Console

from adapters.alerts import MemoryAlerts
from adapters.event_log import StoredEventSource
from adapters.exchange.config import load_reconciliation
from adapters.persistence import eventsourcing_env
from adapters.reconciliation_view import ProjectedReconciliation
from adapters.settings import Settings
from application.order_router import OrderRouter
from application.ports import ReconciliationReport
from domain.client_order_id import client_order_id
from domain.commands import EndSession, StartSession
from domain.values import Mode
from interfaces.bootstrap import build_app
from interfaces.cli_exchange import exchange_side
from interfaces.run_reconcile import scheduled_reconciliation
from projections.replay import verify
from projections.spec import LoggedEvent, dec
from tests.conftest import AppFactory, ReadModels, start_session
from tests.fake_exchange import API_KEY, SECRET, running
from tests.fake_exchange.harness import CONFIG, make_gateway, place
from tests.fake_exchange.market_feed import KlineFeed, csv_rows
from tests.test_exchange_cli import KEYS, quick_config
from tests.test_run import ROOT, ais, environment, start, topics, venue_config, wait_for

VENUE = "binance"
# Real 1-minute BTC bars replayed as 1-second bars ending now: the default agents want
# 577 bars of history, and with the window ending at bar 5487 to 5525 of this file they
# buy, so the first decision (0-35 s after the feed starts) places a paper order that
# fills a second later.
BARS = csv_rows(ROOT / "data" / "BTC-PERP_1m.csv")[4900:5600]
HISTORY = 590  # bars closed when the feed starts: the window then ends at bar 5490
LEAKED = "an order of this system"


def events(home: Path) -> list[LoggedEvent]:
    source = StoredEventSource(eventsourcing_env(None, home))
    try:
        return source.read(0, 100_000)
    finally:
        source.close()


def reports(home: Path, snapshots: list[LoggedEvent]) -> list[ReconciliationReport]:
    with ProjectedReconciliation.opened(eventsourcing_env(None, home), None, home) as view:
        found = [view.report(VENUE, s.originator_version) for s in snapshots]
    assert all(r is not None for r in found), "a snapshot without its reconciliation rows"
    return [r for r in found if r is not None]


def snapshot_lines(log: Path) -> int:
    return log.read_text().count(f"reconciliation {VENUE} snapshot")


def wait_until(check: Callable[[], bool], what: str, log: Path, proc: Any) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"no {what} within 30 s:\n{log.read_text()}")


def item(report: ReconciliationReport, kind: str, name: str) -> Any:
    return next(i for i in report.items if (i.kind, i.item) == (kind, name))


def test_a_shadow_session_reconciles_the_real_account_against_its_baseline(
    tmp_path: Path,
) -> None:
    home, log = tmp_path / "home", tmp_path / "run.log"
    config = venue_config(tmp_path)
    recon = config / "reconciliation.toml"
    recon.write_text(recon.read_text().replace('every_seconds = "60"', 'every_seconds = "1"'))
    env = environment(home, None)
    with running(balances={"USDT": "10000", "BTC": "0.5"}) as fake:
        fake.market_data = KlineFeed.on_grid(BARS, "1s", (int(time.time()) - HISTORY) * 1000)
        env.update(
            AIS_EXCHANGE_BASE_URL=fake.base_url,
            AIS_EXCHANGE_API_KEY=API_KEY,
            AIS_EXCHANGE_API_SECRET=SECRET,
        )
        argv = ("--mode", "shadow", "--config-dir", str(config), "--timeframe", "1s")
        proc = start(env, log, "run", *argv, "--interval", "0.25", "--cycles", "240")
        try:
            wait_for(log, f"reconciliation {VENUE} snapshot 2:", proc)  # the startup baseline
            # The first decision follows; its order fills on the paper venue a second later.
            wait_until(lambda: topics(home).get("FillApplied", 0) > 0, "paper fill", log, proc)
            seen = snapshot_lines(log)
            wait_until(lambda: snapshot_lines(log) > seen, "a snapshot after it", log, proc)
            fake.drift("USDT", "0.5")  # someone else moves the real account: within drift
            wait_for(log, "DRIFT balance USDT", proc)
            fake.drift("BTC", "0.01")  # beyond BTC's drift tolerance (0.0001)
            wait_for(log, "kill switch engaged by reconciliation", proc)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        assert proc.returncode == 0, log.read_text()
        # Orders went to the paper venue only: nothing was sent to, or canceled at, the venue.
        assert fake.orders() == [] and fake.trades() == []
        assert fake.count("POST", "/api/v3/order") == fake.count("DELETE", "/api/v3/order") == 0
    assert "ended after" in log.read_text()

    logged = events(home)
    kinds = [e.kind for e in logged]
    assert kinds.count("Order.Submitted") >= 1 and kinds.count("Position.FillApplied") >= 1
    [policy] = [e for e in logged if e.kind == "ReconciliationPolicy.Set"]
    assert policy.state["policy"]["expect"] == "baseline"
    snapshots = [e for e in logged if e.kind == "ExchangeAccount.SnapshotRecorded"]
    assert [s.state["baseline"] for s in snapshots[:2]] == [True, False]  # startup, schedule
    assert not any(s.state["baseline"] for s in snapshots[1:])

    judged = reports(home, snapshots)
    statuses = [r.status for r in judged]
    drifted = statuses.index("DRIFT")
    assert statuses[:drifted] == ["MATCHED"] * drifted and statuses[-1] == "BREAK"
    fill = next(e for e in logged if e.kind == "Position.FillApplied")
    first_fill = fill.position
    # Judged by the log, that fill alone would put USDT beyond its drift tolerance (1).
    assert dec(fill.state["quantity"]) * dec(fill.state["price"]) > 1
    after_fill = [
        r for r, s in zip(judged[:drifted], snapshots, strict=False) if s.position > first_fill
    ]
    assert after_fill  # paper fills moved the log's book, not the real account's
    for report in after_fill:
        usdt = item(report, "balance", "USDT")
        assert (usdt.expected, usdt.observed) == ("10000", "10000")
        assert item(report, "balance", "BTC").observed == "0.5"
    assert item(judged[drifted], "balance", "USDT").difference == "0.5"
    btc = item(judged[-1], "balance", "BTC")
    assert (btc.status, btc.expected, btc.difference) == ("BREAK", "0.5", "0.01")

    # The kill switch: engaged once, by the BREAK, not by any of the paper fills before it.
    kills = [e for e in logged if e.kind == "RiskDesk.KillSwitchEngaged"]
    assert [k.state["by"] for k in kills] == ["reconciliation"]
    broke_at = next(
        s.position for s, r in zip(snapshots, judged, strict=True) if r.status == "BREAK"
    )
    assert kills[0].position > broke_at > first_fill

    replayed = ais(environment(home, None), "replay", "--verify")
    assert replayed.returncode == 0, replayed.stderr
    assert "verified" in replayed.stdout and replayed.stdout.splitlines()[-1].startswith("digest ")


def test_shadow_reconciliation_only_reads_and_judges_orders_against_the_baseline(
    make_app: AppFactory, read_models: ReadModels, store_url: str | None, tmp_path: Path
) -> None:
    """The composition `ais run --mode shadow` uses, in process, on both stores: orders
    opened or gone at the real account drift and are never canceled there (even with
    cancel_unknown_orders set); an order of ours at the real account is a BREAK."""
    home = tmp_path / "home"
    store_env = eventsourcing_env(store_url, home)
    with running(balances={"USDT": "1000", "BTC": "1"}) as fake:
        resting = fake.foreign_order("BTCUSDT", "SELL", "0.1", "60000").client_order_id
        app = make_app()
        session = start_session(app)  # funded with 100000 USDT: paper money, not the venue's
        alerts = MemoryAlerts()
        real = make_gateway(fake, alerts)
        config = load_reconciliation(CONFIG / "reconciliation.toml", app.catalog, "spot")
        with scheduled_reconciliation(
            Mode.SHADOW,
            Settings(home=home, database_url=store_url),
            store_env,
            app,
            real,
            replace(config, cancel_unknown_orders=True, snapshot_every=timedelta(0)),
            OrderRouter(app, real, alerts),
            alerts,
            Console(file=io.StringIO()),
        ) as reconciler:
            assert reconciler is not None
            baseline = reconciler.startup().report
            assert baseline.status == "MATCHED"
            assert item(baseline, "order", resting).expected == "0.1"

            fake.cancel(resting)  # both behind AIS's back
            new = fake.foreign_order("BTCUSDT", "BUY", "0.01", "40000").client_order_id
            moved = reconciler.tick()
            assert moved is not None and moved.report.status == "DRIFT" and not moved.kill_switch
            assert item(moved.report, "order", resting).note.startswith("open at the baseline")
            assert item(moved.report, "order", new).action == "unknown_order"
            assert alerts.named("UnknownVenueOrder") and moved.actions == ()
            assert [o.status for o in fake.orders()] == ["CANCELED", "NEW"]  # left alone

            leaked = place(app, session, "0.01", "49000")  # as if shadow had sent it there
            assert OrderRouter(app, real, alerts).submit(leaked) == "OPEN"
            broken = reconciler.tick()
            assert broken is not None and broken.kill_switch
            ours = item(broken.report, "order", client_order_id(leaked))
            assert (ours.status, ours.note) == (
                "BREAK",
                "an order of this system is open at the real account",
            )
            assert [o.status for o in fake.orders()] == ["CANCELED", "NEW", "NEW"]  # read only

    read_models.projector().run_once()
    rebuilt = verify(
        read_models.source, read_models.store, read_models.scratch(), read_models.projections
    )
    assert rebuilt.difference is None


def test_ais_reconcile_during_a_shadow_session_judges_against_the_baseline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator's `ais reconcile` while a shadow loop runs must not judge the real account
    by the paper session's book (that would break and halt the shadow loop)."""
    config = quick_config(tmp_path)
    settings = Settings(home=tmp_path / "home", config_dir=config, risk_hmac_keys=SecretStr(KEYS))
    app = build_app(settings)
    try:
        session = app.ids()
        app.execute(
            StartSession(
                session_id=session,
                mode=Mode.SHADOW,
                starting_capital=Decimal(5),  # not what the venue holds: judged by the log, a BREAK
                config_digest="shadow",
            )
        )
        with running(balances={"USDT": "1000"}) as fake:
            monkeypatch.setenv("AIS_EXCHANGE_BASE_URL", fake.base_url)
            monkeypatch.setenv("AIS_EXCHANGE_API_KEY", API_KEY)
            monkeypatch.setenv("AIS_EXCHANGE_API_SECRET", SECRET)
            with exchange_side(settings, trading=app) as side:
                shadowed = side.service.run()
                assert shadowed.report.status == "MATCHED" and side.service.router is None
                app.execute(EndSession(session_id=session, reason="shadow done"))
            with exchange_side(settings, trading=app) as side:  # no shadow session any more
                judged = side.service.run()
        assert judged.report.status == "BREAK" and judged.kill_switch
        assert item(judged.report, "balance", "USDT").expected == "5"
    finally:
        app.close()
