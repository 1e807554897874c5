"""Reconciliation inside `ais run --mode shadow|live`: on startup, then on a schedule.

live:   the venue is judged against the log (what our fills say we hold); order items are
        acted on through the loop's router, and a BREAK halts and cancels at the venue.
shadow: the real account is only read. It is judged against its own baseline, the snapshot
        recorded at startup (the policy says so in the log, so replays agree); our orders
        and fills are the paper venue's and never enter that expectation. A change nobody
        made through AIS shows as DRIFT or BREAK by the same tolerances, and a BREAK engages
        the kill switch as it would live. Nothing is looked up or canceled there.
`ais reconcile` while a shadow session is active judges the same way (read only).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

from rich.console import Console

from adapters.reconciliation_view import ProjectedReconciliation
from adapters.settings import Settings
from application.order_router import OrderRouter
from application.ports import AlertSink, Clock, ExchangeGateway, ReconciliationView
from application.reconcile import ReconcileOutcome, ReconcileService
from application.trading import TradingApp
from domain.reconciliation import BREAK, DRIFT, EXPECT_BASELINE, MATCHED
from domain.session import ACTIVE
from domain.values import Mode

if TYPE_CHECKING:  # ccxt is imported only when a venue is used
    from adapters.exchange.config import ReconciliationSettings


@dataclass
class ScheduledReconciliation:
    service: ReconcileService
    every: timedelta
    clock: Clock
    console: Console
    last: datetime | None = None

    def startup(self, *, rebase: bool = True) -> ReconcileOutcome:
        """The startup snapshot: in shadow, with `rebase`, the baseline the later ones are
        judged against (a session continued after a crash keeps its baseline instead)."""
        return self._run(rebase=rebase)

    def tick(self) -> ReconcileOutcome | None:
        """A snapshot when one is due; a failing one is retried at the next tick."""
        if self.last is not None and self.clock() - self.last < self.every:
            return None
        return self._run(rebase=False)

    def _run(self, *, rebase: bool) -> ReconcileOutcome:
        outcome = self.service.run(rebase=rebase)
        self.last = self.clock()
        report = outcome.report
        counts = {s: sum(1 for i in report.items if i.status == s) for s in (DRIFT, BREAK)}
        self.console.print(
            f"reconciliation {report.venue} snapshot {report.snapshot}: {report.status} "
            f"({len(report.items)} items, {counts[DRIFT]} drift, {counts[BREAK]} breaks)"
        )
        for item in report.items:
            if item.status != MATCHED:
                self.console.print(f"  {item.status} {item.kind} {item.item}: {item.note}")
        if outcome.kill_switch:
            self.console.print("kill switch engaged by reconciliation")
        return outcome


@contextmanager
def scheduled_reconciliation(
    mode: Mode,
    settings: Settings,
    store_env: dict[str, str],
    app: TradingApp,
    real: ExchangeGateway | None,
    config: ReconciliationSettings | None,
    router: OrderRouter,
    alerts: AlertSink,
    console: Console,
) -> Iterator[ScheduledReconciliation | None]:
    """The real account's reconciliation for a shadow or live loop (None without a real
    account: backtest, paper), its read store open."""
    if real is None or config is None:
        yield None
        return
    shadow = mode == Mode.SHADOW
    with ProjectedReconciliation.opened(store_env, settings.database_url, settings.home) as view:
        service = account_service(app, real, view, alerts, config, router, shadow=shadow)
        yield ScheduledReconciliation(service, config.snapshot_every, app.clock, console)


def account_service(
    app: TradingApp,
    real: ExchangeGateway,
    view: ReconciliationView,
    alerts: AlertSink,
    config: ReconciliationSettings,
    router: OrderRouter,
    *,
    shadow: bool,
) -> ReconcileService:
    """The real account's reconciliation: in shadow read only, against its baseline."""
    return ReconcileService(
        app,
        real,
        view,
        alerts,
        replace(config.policy, expect=EXPECT_BASELINE) if shadow else config.policy,
        router=None if shadow else router,  # in shadow, our orders are the paper venue's
        cancel_unknown_orders=config.cancel_unknown_orders and not shadow,
    )


def shadowed(app: TradingApp) -> bool:
    """A shadow session of this account is active: its real account is only read."""
    sessions = app.desk().sessions
    return any(
        status == ACTIVE and app.session(UUID(s)).mode == Mode.SHADOW.value
        for s, status in sessions.items()
    )
