"""The trading loop end to end: reproducible backtests and the kill switch in a real crash."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from adapters.alerts import MemoryAlerts
from adapters.clock import SeededIds, SimulatedClock
from adapters.event_log import StoredEventSource
from adapters.market_data_csv import CandleSeries, CsvMarketData, read_candles
from adapters.paper_exchange import PaperExchange
from adapters.persistence import eventsourcing_env, sole_writer
from adapters.read_store import SqlReadStore, engines
from adapters.report import performance_inputs
from adapters.settings import PROJECT_ROOT, Settings, load_catalog, load_limits
from application.allocation import AllocationPolicy
from application.errors import RiskRejected
from application.loop import LoopConfig, TradingLoop
from application.order_router import OrderRouter
from application.performance import summarize
from application.ports import Candle
from application.trading import TradingApp
from domain.commands import PlaceOrder, StartSession
from domain.signals import LONG, Signal
from domain.values import Mode, OrderType, Side
from interfaces.backtest_run import BacktestRequest, run
from projections.registry import all_projections
from projections.runner import Projector
from tests.conftest import KEYS, PG_DSN, SECRET, all_events, kinds, require_postgres

DATA = PROJECT_ROOT / "data"


def backtest_twice_request() -> BacktestRequest:
    return BacktestRequest(
        data=[DATA / "ETHBTC_5m.csv", DATA / "XMRBTC_5m.csv"],
        config_dir=PROJECT_ROOT / "config" / "btc-quoted",
        capital=Decimal(10),
        seed=11,
        start=datetime(2018, 1, 15, tzinfo=UTC),
        end=datetime(2018, 1, 18, tzinfo=UTC),
    )


def sole_writer_env(url: str | None, home: Path) -> dict[str, str]:
    return sole_writer(eventsourcing_env(url, home))


def summary_of(home: Path, url: str | None, session_id: uuid.UUID) -> dict[str, object]:
    engine, schema = engines(url, home)
    source = StoredEventSource(eventsourcing_env(url, home))
    store = SqlReadStore(engine, schema)
    try:
        Projector(source, store, all_projections()).run_once()
        return summarize(performance_inputs(store, str(session_id))).to_dict()
    finally:
        store.close()
        source.close()


def test_same_data_and_seed_give_the_same_log_and_report(tmp_path: Path) -> None:
    """Two runs, and a third on PostgreSQL: same digest of the event log, same numbers.

    The second run is the app as `ais backtest` opens it, sole writer of its store (no
    fast-forward query on loads): that must change the speed only.
    """
    settings = Settings(home=tmp_path, risk_hmac_keys=f"k1:{SECRET}")  # type: ignore[arg-type]
    outcomes = []
    for name, store in (("a", eventsourcing_env), ("b", sole_writer_env)):
        home = tmp_path / name
        outcome = run(backtest_twice_request(), settings, store(None, home))
        outcomes.append((outcome, summary_of(home, None, outcome.session_id)))
    (first, first_summary), (second, second_summary) = outcomes
    assert first.log_digest == second.log_digest
    assert first_summary == second_summary
    assert int(str(first_summary["orders"])) > 0  # it traded: the equality is not vacuous

    require_postgres()
    schema = f"r_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        url = f"{PG_DSN}?schema={schema}"
        on_pg = run(backtest_twice_request(), settings, eventsourcing_env(url, tmp_path / "pg"))
        assert on_pg.log_digest == first.log_digest
        assert summary_of(tmp_path / "pg", url, on_pg.session_id) == first_summary
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


class AlwaysLong:
    """A deliberately reckless agent: the test is about the risk machinery, not alpha."""

    name = "always_long"
    lookback = 1

    def run(self, instrument: str, candles: Sequence[Candle]) -> Signal | None:
        return Signal(self.name, instrument, LONG, Decimal(1), Decimal("0.05"), 12, "test")


@dataclasses.dataclass(frozen=True)
class Calm:
    scale: Decimal = Decimal(1)
    label: str = "calm"
    reason: str = "test"


class NoRegime:
    lookback = 1

    def scale(self, candles: Sequence[Candle]) -> Calm:
        return Calm()


def crash_market() -> CsvMarketData:
    """BTC-PERP 1-minute bars around 21 January 2022, when BTC fell about 10 % in a day."""
    series = read_candles(DATA / "BTC-PERP_1m.csv", "BTC-PERP")
    start, end = datetime(2022, 1, 20, 12, tzinfo=UTC), datetime(2022, 1, 22, tzinfo=UTC)
    bars = tuple(c for c in series.candles if start <= c.opens_at < end)
    return CsvMarketData([CandleSeries("BTC-PERP", series.timeframe, bars, ())])


def test_kill_switch_engages_in_a_real_crash(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "instruments.toml").write_text(
        '[instruments.BTC-PERP]\nbase = "BTC"\nquote = "USD"\ntick_size = "1"\n'
        'lot_size = "0.0001"\nmin_notional = "1"\n'
    )
    risk = (PROJECT_ROOT / "config" / "risk.toml").read_text()
    risk = risk.split("[mandate.")[0].replace(
        'max_position_weight = "0.10"', 'max_position_weight = "0.95"'
    )
    (config / "risk.toml").write_text(risk + '[mandate.BTC-PERP]\nmax_order_quantity = "10"\n')
    limits, catalog = load_limits(config / "risk.toml"), load_catalog(config / "instruments.toml")
    market = crash_market()
    ticks = market.clock_ticks()
    clock = SimulatedClock(ticks[0])
    app = TradingApp(
        account_id="acct",
        limits=limits,
        catalog=catalog,
        keys=KEYS,
        clock=clock,
        ids=SeededIds(5),
        env=eventsourcing_env(None, tmp_path),
    )
    try:
        session_id = app.ids()
        app.execute(
            StartSession(
                session_id=session_id,
                mode=Mode.PAPER,
                starting_capital=Decimal(100000),
                config_digest="crash",
            )
        )
        paper = PaperExchange(catalog, market, clock, {"USD": Decimal(100000)})
        loop = TradingLoop(
            app,
            market,
            OrderRouter(app, paper, MemoryAlerts()),
            [AlwaysLong()],
            NoRegime(),
            session_id,
            AllocationPolicy(
                max_weight=Decimal("0.9"),
                max_gross=Decimal(1),
                max_order_notional=limits.max_order_notional,
            ),
            LoopConfig(decision_every=12, lookback=5),
        )
        for tick in ticks:
            clock.set(tick)
            loop.step()
        desk = app.desk()
        assert desk.kill_state == "HALTED"
        assert desk.kill_reason is not None and desk.kill_reason.startswith("daily loss")

        events = all_events(app)
        names = kinds(events)
        engaged_at = events[names.index("RiskDesk.KillSwitchEngaged")].id
        decode = app.mapper.transcoder.decode
        later_placements = [
            decode(n.state)
            for n in events
            if n.id > engaged_at
            and n.topic.endswith("RiskDesk.CommandApproved")
            and decode(n.state)["approval"]["command_type"] == "PlaceOrder"
        ]
        assert later_placements == []  # nothing new approved once halted
        assert all(o.status != "open" for o in paper.orders.values())
        assert desk.open_orders == {}
        held = desk.positions["BTC-PERP"]
        assert held > 0  # the position is still there: halting does not dump it

        with pytest.raises(RiskRejected, match="kill_switch"):
            app.execute(
                PlaceOrder(
                    order_id=app.ids(),
                    session_id=session_id,
                    instrument="BTC-PERP",
                    side=Side.BUY,
                    order_type=OrderType.LIMIT,
                    quantity=Decimal("0.01"),
                    limit_price=desk.marks["BTC-PERP"].price,
                )
            )
        last = decode(all_events(app)[-1].state)
        assert (last["guard"], last["observed"]) == ("kill_switch", "HALTED")
    finally:
        app.close()
