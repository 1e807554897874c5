"""`ais reconcile`: take an exchange snapshot now, record it, reconcile it, print the table.

Exit 0 when the venue MATCHES or DRIFTS within tolerance, 2 on a BREAK (the kill switch
is then engaged), 1 with one line on stderr for an error (no credentials, venue down).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from adapters.settings import ConfigError, Settings

if TYPE_CHECKING:  # ccxt is imported only when an exchange command runs
    from adapters.alerts import MemoryAlerts
    from adapters.exchange.ccxt_gateway import CcxtGateway
    from application.order_router import OrderRouter
    from application.ports import ReconciliationReport
    from application.reconcile import ReconcileService
    from application.trading import TradingApp

BREAK_EXIT = 2
_STYLE = {"MATCHED": "green", "DRIFT": "yellow", "BREAK": "bold red"}


@dataclass
class ExchangeSide:
    """Everything `ais reconcile` wires together, closed together."""

    app: TradingApp
    gateway: CcxtGateway
    router: OrderRouter
    service: ReconcileService
    alerts: MemoryAlerts


@contextmanager
def exchange_side(settings: Settings, trading: TradingApp | None = None) -> Iterator[ExchangeSide]:
    """The composition root for the exchange: gateway, router, reconciliation."""
    from adapters.alerts import LoggingAlerts, MemoryAlerts
    from adapters.exchange.ccxt_gateway import CcxtGateway
    from adapters.exchange.config import load_exchange, load_reconciliation
    from adapters.persistence import eventsourcing_env
    from adapters.reconciliation_view import ProjectedReconciliation
    from application.order_router import OrderRouter
    from interfaces.bootstrap import build_app
    from interfaces.run_reconcile import account_service, shadowed

    exchange = load_exchange(settings.config_dir / "exchange.toml")
    if not exchange.gateway.api_key or not exchange.gateway.secret:
        raise ConfigError(
            "no exchange credentials: set AIS_EXCHANGE_API_KEY and AIS_EXCHANGE_API_SECRET "
            "(or AIS_EXCHANGE_API_SECRET_FILE)"
        )
    store_env = eventsourcing_env(settings.database_url, settings.home)
    app = trading or build_app(settings)
    try:
        with ProjectedReconciliation.opened(
            store_env, settings.database_url, settings.home
        ) as view:
            reconciliation = load_reconciliation(
                settings.config_dir / "reconciliation.toml", app.catalog, exchange.gateway.market
            )
            alerts = MemoryAlerts(LoggingAlerts())
            gateway = CcxtGateway(exchange.gateway, app.catalog, alerts=alerts)
            router = OrderRouter(app, gateway, alerts, unknown_outcome=exchange.unknown_outcome)
            service = account_service(  # during a shadow session, as its loop does
                app, gateway, view, alerts, reconciliation, router, shadow=shadowed(app)
            )
            yield ExchangeSide(app, gateway, router, service, alerts)
    finally:
        if trading is None:
            app.close()


def render(report: ReconciliationReport, console: Console) -> None:
    table = Table(
        title=f"reconciliation {report.venue} snapshot {report.snapshot} ({report.taken_at})"
    )
    for column in ("kind", "item", "expected", "observed", "difference", "status", "note"):
        table.add_column(
            column, justify="right" if column in ("expected", "observed", "difference") else "left"
        )
    for item in report.items:
        table.add_row(
            item.kind,
            item.item,
            item.expected or "-",
            item.observed or "-",
            item.difference or "-",
            f"[{_STYLE[item.status]}]{item.status}[/]",
            item.note,
        )
    console.print(table)


def reconcile(
    startup: Annotated[
        bool, typer.Option("--startup", help="first look up every order that may be live")
    ] = False,
) -> None:
    """Take an exchange snapshot now, record it and reconcile it with the log."""
    from application.ports import ExchangeUnavailable

    console = Console(width=160)
    try:
        with exchange_side(Settings()) as side:
            outcome = side.service.startup() if startup else side.service.run()
    except ExchangeUnavailable as down:
        print(f"error: exchange unavailable: {str(down).splitlines()[0]}", file=sys.stderr)
        raise typer.Exit(1) from None
    render(outcome.report, console)
    for action in outcome.actions:
        console.print(f"action: {action}")
    if outcome.kill_switch:
        console.print("kill switch engaged")
    print(f"status {outcome.report.status}")
    if outcome.report.status == "BREAK":
        raise typer.Exit(BREAK_EXIT)
