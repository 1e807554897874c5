"""Composition of a backtest: CSV bars, the paper venue, the agents, a store of its own."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID

from adapters.alerts import LoggingAlerts
from adapters.clock import SeededIds, SimulatedClock
from adapters.event_log import EventLog, log_digest
from adapters.keys import load_keyring
from adapters.market_data_csv import CandleDataError, CsvMarketData
from adapters.paper_exchange import PaperExchange
from adapters.settings import Settings, load_catalog, load_limits
from application.agents import default_agents, default_regime, required_bars
from application.allocation import AllocationPolicy
from application.backtest import BacktestPlan, run_backtest, ticks_between
from application.loop import LoopConfig, RegimeFilter, SignalAgent, StageTimes, TradingLoop
from application.order_router import OrderRouter
from application.ports import (
    AlertSink,
    Clock,
    ExchangeGateway,
    IdFactory,
    MarketData,
    Metrics,
)
from application.trading import TradingApp
from domain.canonical import sha256_hex

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class BacktestRequest:
    data: Sequence[Path]
    config_dir: Path
    capital: Decimal
    seed: int
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class BacktestOutcome:
    session_id: UUID
    bars: int
    candles: int
    log_digest: str
    times: StageTimes


def data_files(paths: Sequence[Path]) -> list[Path]:
    """Files as given, or every `*.csv` in a given directory."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(path.glob("*.csv"))
        elif path.exists():
            files.append(path)
        else:
            raise CandleDataError(f"{path}: no such file or directory")
    if not files:
        raise CandleDataError("no candle files given")
    return files


def config_digest(request: BacktestRequest, files: Sequence[Path]) -> str:
    """What the run depended on: limits, instruments, data bytes, seed, capital."""
    return sha256_hex(
        {
            "risk": (request.config_dir / "risk.toml").read_text(),
            "instruments": (request.config_dir / "instruments.toml").read_text(),
            "data": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files},
            "seed": request.seed,
            "capital": str(request.capital),
        }
    )


@dataclass
class Wiring:
    """A TradingApp, the paper venue and the agents over one market: every mode's base."""

    app: TradingApp
    market: MarketData
    paper: PaperExchange
    policy: AllocationPolicy
    agents: list[SignalAgent]
    regime: RegimeFilter
    loop_config: LoopConfig

    def loop(
        self,
        session_id: UUID,
        gateway: ExchangeGateway | None = None,
        alerts: AlertSink | None = None,
        metrics: Metrics | None = None,
        unknown_outcome: timedelta = timedelta(seconds=15),
    ) -> TradingLoop:
        router = OrderRouter(
            self.app,
            gateway or self.paper,
            alerts or LoggingAlerts(),
            unknown_outcome=unknown_outcome,
        )
        return TradingLoop(
            self.app,
            self.market,
            router,
            self.agents,
            self.regime,
            session_id,
            self.policy,
            self.loop_config,
            metrics=metrics,
        )


def wire(
    market: MarketData,
    config_dir: Path,
    settings: Settings,
    capital: Decimal,
    *,
    clock: Clock,
    ids: IdFactory,
    store_env: dict[str, str],
    venue_clock: Clock | None = None,
) -> Wiring:
    """Compose app, paper venue (seeded with `capital` in the one quote currency), agents."""
    limits = load_limits(config_dir / "risk.toml")
    catalog = load_catalog(config_dir / "instruments.toml")
    quotes = {catalog.get(i).quote for i in market.instruments()}
    if len(quotes) != 1:
        raise CandleDataError(f"instruments must share one quote currency, got {sorted(quotes)}")
    app = TradingApp(
        account_id=settings.account_id,
        limits=limits,
        catalog=catalog,
        keys=load_keyring(settings),
        clock=clock,
        ids=ids,
        env=store_env,
    )
    paper = PaperExchange(catalog, market, venue_clock or clock, {quotes.pop(): capital})
    policy = AllocationPolicy(
        max_weight=limits.max_position_weight * Decimal("0.95"),
        max_gross=min(limits.max_gross_leverage, Decimal(1)),
        max_order_notional=limits.max_order_notional,
    )
    agents, regime = default_agents(), default_regime()
    loop_config = LoopConfig(lookback=required_bars(agents, regime))
    return Wiring(app, market, paper, policy, list(agents), regime, loop_config)


def run(
    request: BacktestRequest,
    settings: Settings,
    store_env: dict[str, str],
    progress: Progress | None = None,
) -> BacktestOutcome:
    files = data_files(request.data)
    market = CsvMarketData.from_paths(files)
    plan = BacktestPlan(request.capital, config_digest(request, files), request.start, request.end)
    ticks = ticks_between(market, plan)
    clock = SimulatedClock(ticks[0] if ticks else datetime.now().astimezone())
    wiring = wire(
        market,
        request.config_dir,
        settings,
        request.capital,
        clock=clock,
        ids=SeededIds(request.seed),
        store_env=store_env,
    )
    app = wiring.app
    make_loop = wiring.loop

    try:
        session_id, loop = run_backtest(app, clock, ticks, plan, make_loop, progress)
        candles = sum(
            1
            for i in market.instruments()
            for c in market.series[i].candles
            if ticks[0] <= c.opens_at + market.series[i].timeframe <= ticks[-1]
        )
    finally:
        app.close()
    log = EventLog(store_env)
    try:
        digest = log_digest(log)
    finally:
        log.close()
    return BacktestOutcome(session_id, len(ticks), candles, digest, loop.times)
