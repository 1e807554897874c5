"""`ais run`: the long-running trading loop, one process per account.

backtest: the loop on a simulated clock over CSV bars, into the main store.
paper:    the loop on the wall clock, every `--interval` seconds, orders to the paper
          venue; with `--data` the CSV bars are replayed one bar per step.
shadow:   real account reads (snapshot, fills) from the venue, orders to the paper venue.
live:     orders to the venue through the ccxt gateway.
"""

from __future__ import annotations

import importlib.util
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import typer
from eventsourcing.persistence import PersistenceError
from rich.console import Console

from adapters.clock import random_ids, system_clock
from adapters.lease import Lease, LeaseHeld, LeaseUnknown, acquire_lease
from adapters.logging_json import configure_logging
from adapters.market_data_csv import CsvMarketData
from adapters.market_data_replay import ReplayMarketData
from adapters.persistence import eventsourcing_env
from adapters.settings import ConfigError, Settings, load_catalog
from adapters.shadow_gateway import ShadowGateway, snapshot_balances
from application.loop import TradingLoop
from application.ports import AlertSink, Clock, ExchangeGateway, MarketData, Metrics
from application.trading import TradingApp
from domain.commands import EndSession, StartSession
from domain.order import TERMINAL
from domain.session import ACTIVE
from domain.values import Mode, to_decimal
from interfaces.backtest_run import BacktestRequest, config_digest, data_files, wire
from interfaces.backtest_run import run as run_backtest_request
from interfaces.bootstrap import freeze_startup_heap
from interfaces.cli_trading import BUNDLED_CONFIG, ensure_keys
from interfaces.kill_watch import KillWatch
from interfaces.run_reconcile import ScheduledReconciliation, scheduled_reconciliation
from interfaces.store_outage import StoreOutage

if TYPE_CHECKING:  # ccxt is imported only when a venue is used
    from adapters.exchange.config import ReconciliationSettings

console = Console()
NEEDS_CCXT = "shadow/live need the ccxt market data source"
MAX_FAILED_STEPS = 5  # consecutive failed steps on a venue before the run gives up


class StopFlag:
    """Set by SIGTERM/SIGINT: the loop finishes its current step, then stops."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal: str | None = None

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        self.signal = signal.Signals(signum).name
        self.event.set()

    @contextmanager
    def installed(self) -> Iterator[StopFlag]:
        previous = {s: signal.signal(s, self) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


@contextmanager
def _observed(metrics_port: int | None) -> Iterator[tuple[Metrics | None, AlertSink]]:
    """With a port: the metrics server, PrometheusMetrics for the loop, circuit alerts."""
    from adapters.alert_notifier import default_sink, webhook_from_settings

    sink = default_sink(webhook_from_settings())
    if metrics_port is None:
        yield None, sink
        return
    from adapters.metrics import CircuitAlerts, ais_registry, start_metrics_server

    registry, metrics = ais_registry()
    with start_metrics_server(metrics_port, registry) as server:
        console.print(f"metrics http://{server.host}:{server.port}/metrics")
        yield metrics, CircuitAlerts(metrics, forward=sink)


def run(
    mode: Annotated[Mode, typer.Option("--mode", help="backtest | paper | shadow | live")],
    data: Annotated[
        list[Path] | None, typer.Option("--data", help="CSV file or folder (repeat)")
    ] = None,
    config_dir: Annotated[
        Path | None, typer.Option("--config-dir", help="risk.toml + instruments.toml")
    ] = None,
    interval: Annotated[float, typer.Option(help="seconds between loop steps")] = 60.0,
    cycles: Annotated[int | None, typer.Option(help="stop after this many steps")] = None,
    metrics_port: Annotated[
        int | None, typer.Option("--metrics-port", help="serve /metrics on this port")
    ] = None,
    capital: Annotated[str, typer.Option(help="paper venue capital in the quote currency")] = "10",
    timeframe: Annotated[str, typer.Option(help="bar size of the venue's market data")] = "5m",
    seed: Annotated[int, typer.Option(help="backtest id seed")] = 7,
) -> None:
    """Run the trading loop for the account until stopped (SIGTERM/SIGINT) or --cycles."""
    settings = Settings()
    configure_logging(settings.log_level)
    amount = to_decimal(capital, "capital")
    if interval < 0:
        raise ValueError("--interval must not be negative")
    live_data = mode in (Mode.SHADOW, Mode.LIVE) or (mode == Mode.PAPER and not data)
    if live_data and importlib.util.find_spec("adapters.market_data_ccxt") is None:
        raise ValueError(NEEDS_CCXT if mode != Mode.PAPER else "paper needs --data")
    if mode in (Mode.SHADOW, Mode.LIVE) and data:
        raise ValueError(f"{mode.value} trades on the venue's market data: no --data")
    if mode == Mode.BACKTEST and not data:
        raise ValueError("backtest needs --data")
    files = data_files(data) if data else []  # bad input is reported before anything starts
    if config_dir is None:  # AIS_CONFIG_DIR, else the bundled BTC-quoted set for its data
        explicit = "config_dir" in settings.model_fields_set
        config_dir = BUNDLED_CONFIG if files and not explicit else settings.config_dir
    if mode in (Mode.BACKTEST, Mode.PAPER):  # real money fails closed without keys
        ensure_keys(settings)
    store_env = eventsourcing_env(settings.database_url, settings.home)
    try:
        lease = acquire_lease(settings.account_id, settings.database_url, settings.home)
    except LeaseHeld as held:
        print(f"error: {held}", file=sys.stderr)
        raise typer.Exit(1) from None
    with lease:
        request = BacktestRequest(files, config_dir, amount, seed)
        if mode == Mode.BACKTEST:
            outcome = run_backtest_request(request, settings, store_env)
            console.print(f"session {outcome.session_id}: {outcome.bars} bar closes")
            console.print(f"event-log digest {outcome.log_digest}")
            return
        with StopFlag().installed() as stop, _observed(metrics_port) as (metrics, alerts):
            _run_loop(
                mode,
                request,
                files,
                settings,
                store_env,
                Pacing(stop, interval, cycles, timeframe, lease),
                metrics,
                alerts,
            )


@dataclass(frozen=True)
class Pacing:
    stop: StopFlag
    interval: float
    cycles: int | None
    timeframe: str
    lease: Lease | None = None  # checked before every step: a lost lease stops the loop


@dataclass
class Venue:
    """Where market data comes from and where orders go, besides the paper venue."""

    market: MarketData
    venue_clock: Clock
    replay: ReplayMarketData | None = None
    real: ExchangeGateway | None = None  # the ccxt gateway (shadow, live)
    unknown_outcome: timedelta = timedelta(seconds=15)
    reconciliation: ReconciliationSettings | None = None  # of the real account

    def capital(self, quote: str, default: Decimal) -> Decimal:
        """Shadow and live start from what the real account holds in the quote currency."""
        if self.real is None:
            return default
        return snapshot_balances(self.real.snapshot()).get(quote, Decimal(0))


def _venue(
    mode: Mode,
    files: list[Path],
    config_dir: Path,
    timeframe: str,
    alerts: AlertSink,
) -> Venue:
    if files:
        replay = ReplayMarketData(CsvMarketData.from_paths(files))
        return Venue(replay, replay.now, replay)
    # Imported here: ccxt is heavy, and paper runs on recorded data do without it.
    from adapters.exchange.ccxt_gateway import CcxtGateway
    from adapters.exchange.config import load_exchange, load_reconciliation
    from adapters.market_data_ccxt import CcxtMarketData

    exchange = load_exchange(config_dir / "exchange.toml")
    catalog = load_catalog(config_dir / "instruments.toml")
    market = CcxtMarketData(exchange.gateway, catalog.symbols(), timeframe=timeframe)
    if mode == Mode.PAPER:
        return Venue(market, system_clock)
    if not exchange.gateway.api_key or not exchange.gateway.secret:
        raise ConfigError(
            f"{mode.value} reads the real account: set AIS_EXCHANGE_API_KEY and "
            "AIS_EXCHANGE_API_SECRET (or AIS_EXCHANGE_API_SECRET_FILE)"
        )
    gateway = CcxtGateway(exchange.gateway, catalog, alerts=alerts)
    reconciliation = load_reconciliation(
        config_dir / "reconciliation.toml", catalog, exchange.gateway.market
    )
    return Venue(market, system_clock, None, gateway, exchange.unknown_outcome, reconciliation)


def _run_loop(
    mode: Mode,
    request: BacktestRequest,
    files: list[Path],
    settings: Settings,
    store_env: dict[str, str],
    pacing: Pacing,
    metrics: Metrics | None,
    alerts: AlertSink,
) -> None:
    venue = _venue(mode, files, request.config_dir, pacing.timeframe, alerts)
    catalog = load_catalog(request.config_dir / "instruments.toml")
    quotes = sorted({catalog.get(i).quote for i in venue.market.instruments()})
    capital = venue.capital(quotes[0], request.capital) if len(quotes) == 1 else request.capital
    wiring = wire(
        venue.market,
        request.config_dir,
        settings,
        capital,
        clock=system_clock,
        ids=random_ids,
        store_env=store_env,
        venue_clock=venue.venue_clock,
    )
    try:
        if venue.replay is not None:  # the agents see a full lookback from the first step
            venue.replay.cursor = min(wiring.loop_config.lookback, len(venue.replay.ticks) - 1)
        orders_to: ExchangeGateway | None = None
        if mode == Mode.LIVE:
            orders_to = venue.real
        elif mode == Mode.SHADOW and venue.real is not None:
            orders_to = ShadowGateway(wiring.paper, venue.real)
        app = wiring.app
        continued = _left_active(app, mode)
        session_id = continued or app.ids()
        loop = wiring.loop(session_id, orders_to, alerts, metrics, venue.unknown_outcome)
        if mode == Mode.LIVE:  # the account's older trades are not ours: read from here on
            loop.router.fills_since = min(
                [app.order(i).created_on for i in loop.router.live_orders()] + [system_clock()]
            )
        resolved = loop.router.resolve_open()  # orders a previous process left open
        if resolved:
            console.print(f"resolved {len(resolved)} open orders from a previous run")
        loop.adopt(i for i, status in resolved.items() if status not in TERMINAL)
        freeze_startup_heap()
        if continued:
            console.print(f"continuing session {session_id}, left active by a stopped run")
        else:
            app.execute(
                StartSession(
                    session_id=session_id,
                    mode=mode,
                    starting_capital=capital,
                    config_digest=config_digest(request, files) if files else mode.value,
                )
            )
        console.print(f"session {session_id} ({mode.value}) for account {settings.account_id}")
        with scheduled_reconciliation(
            mode,
            settings,
            store_env,
            app,
            venue.real,
            venue.reconciliation,
            loop.router,
            alerts,
            console,
        ) as reconciler:
            if reconciler is not None:  # a continued session keeps its shadow baseline
                reconciler.startup(rebase=not continued)
            outage = StoreOutage(alerts, metrics)
            reason = _step_until_stopped(loop, venue.replay, pacing, reconciler, outage)
        loop.close_out()
        app.execute(EndSession(session_id=session_id, reason=reason))
        console.print(f"session {session_id} ended after {loop.steps} steps: {reason}")
    finally:
        wiring.app.close()


def _left_active(app: TradingApp, mode: Mode) -> UUID | None:
    """A session of this mode still ACTIVE: a run that was killed left it so (the lease
    says no other loop trades the account), and this run carries it on."""
    desk = app.desk()
    for session_id in sorted(s for s, status in desk.sessions.items() if status == ACTIVE):
        if app.session(UUID(session_id)).mode == mode.value:
            return UUID(session_id)
    return None


def _step_until_stopped(
    loop: TradingLoop,
    replay: ReplayMarketData | None,
    pacing: Pacing,
    reconciler: ScheduledReconciliation | None = None,
    outage: StoreOutage | None = None,
) -> str:
    """Step until stopped; on a venue, a failing step (or a snapshot due after it) is
    reported and retried next time."""
    stop, failures = pacing.stop, 0
    watch = KillWatch(lambda news: console.print(news, highlight=False))
    while not stop.event.is_set():
        try:
            if pacing.lease is not None:
                pacing.lease.check()
            loop.step()
            desk = loop.app.desk()  # the switch is often flipped by another process
            watch.check(desk.kill_state, desk.kill_reason)
            if reconciler is not None:
                reconciler.tick()
            failures = 0
            if outage is not None:
                outage.recovered()
        except LeaseHeld as lost:  # another process trades the account now
            return f"lease lost: {lost}"
        except (PersistenceError, LeaseUnknown) as exc:  # store down: fail closed, wait
            if outage is None or replay is not None:
                raise
            if stop.event.wait(outage.failed(exc)):
                break
            continue
        except Exception as exc:
            if replay is not None:
                raise  # recorded data does not get better by waiting
            failures += 1
            print(f"error: step failed ({failures} in a row): {exc}", file=sys.stderr)
            if failures >= MAX_FAILED_STEPS:
                return f"{failures} steps in a row failed: {exc}"
        sys.stdout.flush()
        if pacing.cycles is not None and loop.steps + failures >= pacing.cycles:
            return f"{pacing.cycles} cycles done"
        if replay is not None and not replay.advance():
            return "replayed data exhausted"
        if stop.event.wait(pacing.interval):
            break
    return f"stopped by {stop.signal}"
