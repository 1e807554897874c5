"""Reconciliation against the fake Binance: snapshots recorded, judged by the projection,
acted on by the service; the verdicts rebuilt identically from the log."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from adapters.alerts import MemoryAlerts
from adapters.clock import SimulatedClock
from adapters.exchange.config import load_reconciliation
from adapters.reconciliation_view import ProjectedReconciliation
from application.order_router import OrderRouter
from application.ports import AccountSnapshot, ExchangeFill, ExchangeOrder, OrderRequest
from application.reconcile import ReconcileService
from application.trading import TradingApp
from domain.client_order_id import client_order_id
from domain.reconciliation import Tolerance
from domain.values import Side
from projections.digest import digests
from projections.replay import rebuild, verify
from tests.conftest import AppFactory, ReadModels, all_events, kinds, start_session
from tests.fake_exchange import FakeBinance, running
from tests.fake_exchange.harness import CONFIG, make_gateway, place


def reconciler(
    app: TradingApp,
    fake: FakeBinance,
    read_models: ReadModels,
    alerts: MemoryAlerts,
    *,
    venue: str = "binance",
    market: str = "spot",
    cancel_unknown_orders: bool = False,
) -> ReconcileService:
    gateway = make_gateway(fake, alerts, venue=venue, market=market)
    settings = load_reconciliation(CONFIG / "reconciliation.toml", app.catalog, market)
    return ReconcileService(
        app,
        gateway,
        ProjectedReconciliation(read_models.source, read_models.store),
        alerts,
        settings.policy,
        router=OrderRouter(app, gateway, alerts),
        cancel_unknown_orders=cancel_unknown_orders or settings.cancel_unknown_orders,
    )


def item(outcome: Any, kind: str, name: str) -> Any:
    return next(i for i in outcome.report.items if (i.kind, i.item) == (kind, name))


def test_matched_drift_break_and_an_identical_rebuild(
    make_app: AppFactory, read_models: ReadModels
) -> None:
    with running() as fake:
        app = make_app()
        alerts = MemoryAlerts()
        service = reconciler(app, fake, read_models, alerts)
        session = start_session(app)
        assert service.run().report.status == "MATCHED"

        router = service.router
        assert router is not None
        assert router.submit(place(app, session, "0.01", "50000")) == "FILLED"
        resting = place(app, session, "0.02", "49000")
        assert router.submit(resting) == "OPEN"
        matched = service.run()
        assert matched.report.status == "MATCHED"
        usdt = item(matched, "balance", "USDT")
        assert (usdt.expected, usdt.observed) == ("99499.5", "99499.5")  # 100000 - 500 - fee
        assert item(matched, "balance", "BTC").observed == "0.01"
        assert item(matched, "order", client_order_id(resting)).status == "MATCHED"

        fake.drift("USDT", "0.5")  # within the USDT drift tolerance (1)
        drift = service.run()
        assert drift.report.status == "DRIFT" and not drift.kill_switch
        assert item(drift, "balance", "USDT").difference == "0.5"
        assert alerts.named("ReconciliationDrift") and app.desk().kill_state == "ACTIVE"

        fake.drift("USDT", "-100")
        broken = service.run()
        assert broken.report.status == "BREAK" and broken.kill_switch
        assert item(broken, "balance", "USDT").status == "BREAK"
        [alert] = alerts.named("ReconciliationBreak")
        assert alert.severity == "critical" and "balance USDT" in alert.summary
        assert app.desk().kill_state == "HALTED"
        assert app.order(resting).status == "CANCELED"  # the kill switch, here and there
        assert [o.status for o in fake.orders()] == ["FILLED", "CANCELED"]

        statuses = [r["status"] for r in read_models.rows("reconciliation")]
        assert statuses == ["MATCHED", "MATCHED", "DRIFT", "BREAK"]

        # Done-when 3: the verdicts are a function of the log alone.
        read_models.projector().run_once()
        live = digests(read_models.store, read_models.projections)
        checked = verify(
            read_models.source, read_models.store, read_models.scratch(), read_models.projections
        )
        assert checked.difference is None
        rebuilt = rebuild(read_models.source, read_models.store, read_models.projections)
        assert rebuilt.digests == live


def test_startup_resolves_orders_missing_at_the_venue_and_flags_unknown_ones(
    make_app: AppFactory, read_models: ReadModels
) -> None:
    with running() as fake:
        app = make_app()
        alerts = MemoryAlerts()
        service = reconciler(app, fake, read_models, alerts)
        session = start_session(app)
        router = service.router
        assert router is not None
        gone = place(app, session, "0.01", "49000")
        partial = place(app, session, "0.02", "49000")
        router.submit(gone)
        router.submit(partial)
        fake.cancel(client_order_id(gone))  # canceled in the web UI
        fake.fill(client_order_id(partial), "0.005")  # filled while we were down
        fake.foreign_order("LTCUSDT", "BUY", "1", "60")  # someone else's open order

        outcome = service.startup()
        assert app.order(gone).status == "CANCELED"
        assert "canceled at binance" in (app.order(gone).end_reason or "")
        assert app.order(partial).filled_quantity == Decimal("0.005")
        assert outcome.report.status == "DRIFT"  # only the foreign order is left
        foreign = item(outcome, "order", "web_1")
        assert (foreign.status, foreign.action) == ("DRIFT", "unknown_order")
        assert alerts.named("UnknownVenueOrder") and app.desk().kill_state == "ACTIVE"
        assert [i.status for i in outcome.report.items if i.kind == "balance"] == ["MATCHED"] * 4


def test_our_open_order_missing_at_the_venue_is_looked_up_during_a_run(
    make_app: AppFactory, read_models: ReadModels
) -> None:
    with running() as fake:
        app = make_app()
        alerts = MemoryAlerts()
        service = reconciler(app, fake, read_models, alerts)
        session = start_session(app)
        assert service.router is not None
        order_id = place(app, session, "0.01", "49000")
        service.router.submit(order_id)
        fake.cancel(client_order_id(order_id))  # behind our back, while we are running
        outcome = service.run()
        assert any(
            a.startswith(f"looked up {client_order_id(order_id)}: CANCELED")
            for a in outcome.actions
        )
        assert outcome.report.status == "MATCHED"


def test_an_order_canceled_here_but_open_there_is_canceled_at_the_venue(
    make_app: AppFactory, read_models: ReadModels
) -> None:
    with running() as fake:
        app = make_app()
        alerts = MemoryAlerts()
        service = reconciler(app, fake, read_models, alerts, cancel_unknown_orders=True)
        session = start_session(app)
        assert service.router is not None
        order_id = place(app, session, "0.01", "49000")
        service.router.submit(order_id)
        fake.foreign_order("BTCUSDT", "BUY", "0.01", "40000")  # not ours: canceled, by config
        app.engage_kill_switch(reason="operator", by="test")  # cancels here only
        outcome = service.run()
        assert outcome.report.status == "MATCHED"
        assert sorted(outcome.actions) == [
            f"canceled {client_order_id(order_id)} at binance (canceled here): canceled",
            "canceled web_1 at binance (not ours): canceled",
        ]
        assert [o.status for o in fake.orders()] == ["CANCELED", "CANCELED"]


def test_a_fill_we_never_asked_for_breaks_reconciliation(
    make_app: AppFactory, read_models: ReadModels
) -> None:
    with running() as fake:
        app = make_app()
        alerts = MemoryAlerts()
        service = reconciler(app, fake, read_models, alerts)
        start_session(app)
        fake.foreign_order("BTCUSDT", "BUY", "0.001")  # a market buy outside the system
        outcome = service.run()
        assert outcome.report.status == "BREAK"
        btc = item(outcome, "balance", "BTC")
        assert (btc.expected, btc.observed, btc.status) == ("0", "0.001", "BREAK")
        assert [a.name for a in alerts.sent if a.severity == "critical"] == [
            "UnknownFill",
            "ReconciliationBreak",
        ]
        assert app.desk().kill_state == "HALTED"
        assert kinds(all_events(app)).count("UnknownFill.Recorded") == 1


def test_usdm_positions_and_margin_reconcile(make_app: AppFactory, read_models: ReadModels) -> None:
    with running(usdm_wallet="100000") as fake:
        app = make_app()
        alerts = MemoryAlerts()
        service = reconciler(app, fake, read_models, alerts, venue="binanceusdm", market="swap")
        session = start_session(app)
        assert service.router is not None
        assert service.router.submit(place(app, session, "0.01", "50000")) == "FILLED"
        opened = service.run()
        assert opened.report.status == "MATCHED"
        assert item(opened, "position", "BTC-USDT").observed == "0.01"
        assert item(opened, "balance", "USDT").expected == "99999.8"  # wallet: fee only

        fake.set_price("BTCUSDT", "51000")
        app.observe_mark("BTC-USDT", Decimal(51000))
        sell = place(app, session, "0.01", "51000", side=Side.SELL)
        assert service.router.submit(sell) == "FILLED"
        closed = service.run()
        assert closed.report.status == "MATCHED"
        assert item(closed, "balance", "USDT").observed == "100009.596"  # +10 realized, fees
        assert item(closed, "position", "BTC-USDT").expected == "0"


def test_the_policy_is_recorded_in_the_log_when_it_changes(
    make_app: AppFactory, read_models: ReadModels
) -> None:
    with running() as fake:
        app = make_app()
        service = reconciler(app, fake, read_models, MemoryAlerts())
        assert service.record_policy() is True
        assert service.record_policy() is False
        service.policy = replace(service.policy, default=Tolerance(Decimal(0), Decimal(1)))
        assert service.record_policy() is True
        names = kinds(all_events(app))
        assert names.count("ReconciliationPolicy.Set") == 1
        assert names.count("ReconciliationPolicy.Changed") == 1


class SnapshotOnly:
    """A venue seen only through snapshots (a paper exchange, or shadow mode's real one)."""

    venue = "paper"

    def __init__(self, snapshot: AccountSnapshot) -> None:
        self._snapshot = snapshot

    def snapshot(self) -> AccountSnapshot:
        return self._snapshot

    def submit(self, request: OrderRequest) -> ExchangeOrder:
        raise AssertionError("reconciliation never sends orders")

    def cancel(self, client_order_id: str, instrument: str) -> ExchangeOrder | None:
        return None

    def lookup(self, client_order_id: str, instrument: str) -> ExchangeOrder | None:
        raise AssertionError("no router, no lookups")

    def fills(self, since: datetime | None) -> list[ExchangeFill]:
        raise AssertionError("no router, no fills")


def test_paper_style_snapshots_reconcile_without_a_router(
    make_app: AppFactory, read_models: ReadModels, clock: SimulatedClock
) -> None:
    app = make_app()
    start_session(app)
    venue = SnapshotOnly(
        AccountSnapshot(
            taken_at=clock(),
            balances={"USDT": {"total": "100000"}},
            open_orders=[
                {
                    "client_order_id": "someone-else",
                    "instrument": "BTC-USDT",
                    "side": "BUY",
                    "quantity": "0.01",
                    "filled": "0",
                }
            ],
        )
    )
    policy = load_reconciliation(CONFIG / "reconciliation.toml", app.catalog, "spot").policy
    alerts = MemoryAlerts()
    view = ProjectedReconciliation(read_models.source, read_models.store)
    outcome = ReconcileService(app, venue, view, alerts, policy).run()
    assert outcome.report.venue == "paper" and outcome.report.status == "DRIFT"
    assert item(outcome, "balance", "USDT").status == "MATCHED"
    assert item(outcome, "order", "someone-else").action == "unknown_order"
    assert [a.name for a in alerts.sent] == ["UnknownVenueOrder", "ReconciliationDrift"]
