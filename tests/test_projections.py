"""Read models against hand-computed numbers, the RiskDesk's own book, and a rebuild."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.clock import SeededIds, SimulatedClock
from adapters.event_log import StoredEventSource
from adapters.persistence import eventsourcing_env
from adapters.read_store import SqlReadStore, engines
from adapters.settings import load_catalog
from application.errors import RiskRejected
from application.trading import TradingApp
from domain.commands import CancelOrder, PlaceOrder
from domain.errors import DomainError
from domain.limits import RiskLimits
from domain.values import OrderType, Side
from projections.digest import combined, digests
from projections.registry import all_projections
from projections.replay import rebuild, verify
from projections.runner import Projector
from projections.spec import LoggedEvent, Rows, TableSpec
from tests.conftest import CONFIG, KEYS, PG_DSN, START, ReadModels, require_postgres, start_session


def buy_or_sell(
    app: TradingApp,
    session_id: uuid.UUID,
    instrument: str,
    side: str,
    fills: list[tuple[str, str, str]],
) -> uuid.UUID:
    """Place a limit order for the fills' total and apply the fills (quantity, price, fee)."""
    quantity = sum((Decimal(q) for q, _, _ in fills), Decimal(0))
    order_id = app.ids()
    app.execute(
        PlaceOrder(
            order_id=order_id,
            session_id=session_id,
            instrument=instrument,
            side=Side(side),
            order_type=OrderType.LIMIT,
            quantity=quantity,
            limit_price=Decimal(fills[0][1]),
        )
    )
    for n, (q, price, fee) in enumerate(fills):
        app.record_fill(
            order_id,
            trade_id=f"{order_id}-{n}",
            quantity=Decimal(q),
            price=Decimal(price),
            fee=Decimal(fee),
            filled_at=app.clock(),
        )
    return order_id


def test_hand_computed_nav_drawdown_exposure(app: TradingApp, read_models: ReadModels) -> None:
    """Fees, partial fills, a short and a flip through zero, across two UTC days."""
    clock: Any = app.clock
    session_id = start_session(app)  # 100000 cash; BTC 50000, ETH 3000
    btc = buy_or_sell(
        app, session_id, "BTC-USDT", "BUY", [("0.04", "50000", "2"), ("0.06", "50000", "3")]
    )
    clock.advance(60)
    app.observe_mark("BTC-USDT", Decimal("51000"))  # NAV 94995 + 5100 = 100095
    buy_or_sell(app, session_id, "ETH-USDT", "SELL", [("3", "3000", "9")])  # short 3
    clock.advance(60)
    app.observe_mark("ETH-USDT", Decimal("2900"))  # NAV 103986 + 5100 - 8700 = 100386
    buy_or_sell(app, session_id, "ETH-USDT", "BUY", [("5", "2900", "14.5")])  # flip to +2
    clock.advance(60)
    app.observe_mark("ETH-USDT", Decimal("3100"))  # NAV 89471.5 + 5100 + 6200 = 100771.5
    clock.set(START.replace(hour=0) + timedelta(days=1))
    app.observe_mark("BTC-USDT", Decimal("49000"))  # next day: 89471.5 + 4900 + 6200
    read_models.projector().run_once()

    [summary] = read_models.rows("portfolio")
    assert Decimal(summary["cash"]) == Decimal("89471.5")
    assert Decimal(summary["nav"]) == Decimal("100571.5")
    assert Decimal(summary["high_water_mark"]) == Decimal("100771.5")
    expected_dd = 1 - Decimal("100571.5") / Decimal("100771.5")
    assert Decimal(summary["drawdown"]) == expected_dd
    assert Decimal(summary["max_drawdown"]) == expected_dd
    assert summary["day"] == "2024-01-03"
    assert Decimal(summary["daily_pnl"]) == Decimal("-200")
    navs = [Decimal(r["nav"]) for r in read_models.rows("nav_history")]
    assert navs == [
        Decimal(v) for v in ("100000", "100000", "100095", "100386", "100771.5", "100571.5")
    ]
    days = {r["day"]: Decimal(r["pnl"]) for r in read_models.rows("daily_pnl")}
    assert days == {"2024-01-02": Decimal("771.5"), "2024-01-03": Decimal("-200")}

    exposure = {r["instrument"]: r for r in read_models.rows("exposure")}
    assert Decimal(exposure["BTC-USDT"]["notional"]) == Decimal("4900")
    assert Decimal(exposure["ETH-USDT"]["notional"]) == Decimal("6200")
    assert Decimal(exposure["ETH-USDT"]["weight"]) == Decimal("6200") / Decimal("100571.5")
    [totals] = read_models.rows("exposure_totals")
    assert (Decimal(totals["long"]), Decimal(totals["short"])) == (Decimal(11100), Decimal(0))
    assert Decimal(totals["gross"]) == Decimal(totals["net"]) == Decimal(11100)
    assert Decimal(totals["leverage"]) == Decimal(11100) / Decimal("100571.5")

    positions = {r["instrument"]: r for r in read_models.rows("positions")}
    eth = positions["ETH-USDT"]
    assert (Decimal(eth["quantity"]), Decimal(eth["average_entry"])) == (Decimal(2), Decimal(2900))
    assert Decimal(eth["realized_pnl"]) == Decimal("276.5")  # -9 + 300 - 14.5
    assert Decimal(positions["BTC-USDT"]["realized_pnl"]) == Decimal("-5")
    order = next(r for r in read_models.rows("orders") if r["order_id"] == str(btc))
    assert (order["status"], order["filled_quantity"]) == ("FILLED", "0.10")
    assert (Decimal(order["average_price"]), Decimal(order["fees"])) == (Decimal(50000), Decimal(5))


def test_replay_verify_names_a_row_edited_by_hand(app: TradingApp, read_models: ReadModels) -> None:
    session_id = start_session(app)
    order_id = buy_or_sell(app, session_id, "BTC-USDT", "BUY", [("0.01", "50000", "0.5")])
    read_models.projector().run_once()
    assert (
        verify(
            read_models.source, read_models.store, read_models.scratch(), read_models.projections
        ).difference
        is None
    )
    table = read_models.store.tables(read_models.projections[2])["orders"]
    with read_models.store.engine.begin() as conn:
        conn.execute(table.update().values(fees="0"))
    result = verify(
        read_models.source, read_models.store, read_models.scratch(), read_models.projections
    )
    assert result.difference is not None
    assert result.difference.describe() == (
        f"table orders: row order_id={order_id} differs in fees (live ['0'], rebuilt ['0.5'])"
    )


def test_schema_version_change_rebuilds(app: TradingApp, read_models: ReadModels) -> None:
    start_session(app)
    read_models.projector().run_once()
    before = digests(read_models.store, read_models.projections)
    sessions = next(p for p in read_models.projections if p.name == "sessions")
    sessions.version = 2  # as if the read model's shape changed
    projector = read_models.projector()
    assert projector.rebuilt == ["sessions"]
    assert read_models.store.position("sessions") == 0
    projector.run_once()
    assert digests(read_models.store, read_models.projections) == before


# --- random histories ------------------------------------------------------------------

actions = st.lists(
    st.one_of(
        st.tuples(
            st.just("order"),
            st.sampled_from(["BTC-USDT", "ETH-USDT"]),
            st.sampled_from(["BUY", "SELL"]),
            st.integers(1, 40),
        ),
        st.tuples(st.just("fill"), st.integers(0, 9), st.integers(1, 100)),
        st.tuples(st.just("cancel"), st.integers(0, 9)),
        st.tuples(
            st.just("mark"), st.sampled_from(["BTC-USDT", "ETH-USDT"]), st.integers(-300, 300)
        ),
        st.tuples(st.just("kill"), st.booleans()),
        st.tuples(st.just("time"), st.integers(1, 30 * 3600)),
    ),
    min_size=5,
    max_size=30,
)


@contextmanager
def fresh_store(kind: str, tmp_root: Path) -> Iterator[str | None]:
    """A store of its own for each hypothesis example."""
    if kind == "sqlite":
        yield None
        return
    schema = f"h_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_DSN}?schema={schema}"
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def check_desk_agrees(app: TradingApp, models: ReadModels) -> None:
    """The desk's book and the projections are computed independently; they must agree."""
    desk = app.desk()
    found = models.rows("portfolio")
    if not found:
        return
    [summary] = found
    assert Decimal(summary["cash"]) == desk.cash
    nav = desk.nav()
    assert (Decimal(summary["nav"]) if summary["nav"] is not None else None) == nav
    held = {r["instrument"]: Decimal(r["quantity"]) for r in models.rows("exposure")}
    for instrument, quantity in desk.positions.items():
        assert held.get(instrument, Decimal(0)) == quantity
    [totals] = models.rows("exposure_totals")
    gross = sum((abs(q) * desk.marks[i].price for i, q in desk.positions.items()), Decimal(0))
    assert Decimal(totals["gross"]) == gross


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=actions)
def test_random_histories_project_incrementally_as_a_rebuild_does(
    kind: str,
    history: list[tuple[Any, ...]],
    tmp_path_factory: pytest.TempPathFactory,
    limits: RiskLimits,
) -> None:
    if kind == "postgres":
        require_postgres()
    home = tmp_path_factory.mktemp("h")
    with fresh_store(kind, home) as url:
        clock = SimulatedClock(START)
        app = TradingApp(
            account_id="acct",
            limits=replace(limits, max_mark_age_seconds=10**7),
            catalog=load_catalog(CONFIG / "instruments.toml"),
            keys=KEYS,
            clock=clock,
            ids=SeededIds(3),
            env=eventsourcing_env(url, home),
        )
        engine, schema = engines(url, home)
        models = ReadModels(
            StoredEventSource(eventsourcing_env(url, home)),
            SqlReadStore(engine, schema),
            all_projections(),
        )
        try:
            play(app, clock, models, history)
            live = digests(models.store, models.projections)
            scratch = models.scratch()
            rebuilt = rebuild(models.source, scratch, models.projections)
            assert rebuilt.digests == live
            assert rebuilt.digest == combined(live)
        finally:
            models.store.close()
            models.source.close()
            app.close()


def play(
    app: TradingApp, clock: SimulatedClock, models: ReadModels, history: list[tuple[Any, ...]]
) -> None:
    session_id = start_session(app)
    orders: list[uuid.UUID] = []
    projector = models.projector(batch_size=7)
    prices = {"BTC-USDT": Decimal(50000), "ETH-USDT": Decimal(3000)}
    for n, action in enumerate(history):
        clock.advance(11)
        try:
            if action[0] == "order":
                _, instrument, side, size = action
                quantity = Decimal(size) / (1000 if instrument == "BTC-USDT" else 10)
                order = PlaceOrder(
                    order_id=app.ids(),
                    session_id=session_id,
                    instrument=instrument,
                    side=Side(side),
                    order_type=OrderType.LIMIT,
                    quantity=quantity,
                    limit_price=prices[instrument],
                )
                app.execute(order)
                orders.append(order.order_id)
            elif action[0] == "fill" and orders:
                target = app.order(orders[action[1] % len(orders)])
                quantity = max(
                    (target.remaining * action[2] / 100).quantize(Decimal("0.0001")),
                    Decimal("0.0001"),
                )
                app.record_fill(
                    target.id,
                    trade_id=f"t{n}",
                    quantity=quantity,
                    price=prices[target.instrument],
                    fee=Decimal("0.25"),
                    filled_at=clock(),
                )
            elif action[0] == "cancel" and orders:
                app.execute(CancelOrder(order_id=orders[action[1] % len(orders)], reason="x"))
            elif action[0] == "mark":
                _, instrument, bps = action
                prices[instrument] = (prices[instrument] * (10000 + bps) / 10000).quantize(
                    Decimal("0.01")
                )
                app.observe_mark(instrument, prices[instrument])
            elif action[0] == "kill":
                if action[1]:
                    app.engage_kill_switch(reason="random drill", by="hypothesis")
                elif app.desk().kill_state != "ACTIVE":
                    app.reset_kill_switch(reason="random reset", by="hypothesis")
            elif action[0] == "time":
                clock.advance(action[1])
        except (RiskRejected, DomainError):
            pass  # refusals are part of a realistic history; they are in the log too
        projector.run_once()
        check_desk_agrees(app, models)


class Broken:
    """A projection whose handler fails: the batch must be rolled back and released."""

    name = "broken"
    version = 1
    tables: tuple[TableSpec, ...] = (TableSpec("broken", ("id",), ("id",), ("id",)),)

    def handle(self, event: LoggedEvent, rows: Rows) -> None:
        rows.put("broken", {"id": event.position})
        raise RuntimeError("handler bug")


def test_a_failing_handler_leaves_no_rows_and_no_lock(
    app: TradingApp, read_models: ReadModels
) -> None:
    start_session(app)
    projector = Projector(read_models.source, read_models.store, [Broken()])
    with pytest.raises(RuntimeError, match="handler bug"):
        projector.run_once()
    assert read_models.store.position("broken") == 0
    app.observe_mark("BTC-USDT", Decimal(50001))  # the writer is not blocked by a lock
    assert list(read_models.store.dump(Broken())) == []


class TakesTheWriteLock:
    """A projection whose handler writes to the database itself, as another writer would."""

    name = "lock_probe"
    version = 1
    tables: tuple[TableSpec, ...] = (TableSpec("lock_probe", ("id",), ("id",), ("id",)),)

    def __init__(self, database: Path) -> None:
        self.database = database

    def handle(self, event: LoggedEvent, rows: Rows) -> None:
        other = sqlite3.connect(self.database, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # fails at once if the batch held the lock
            other.execute("COMMIT")
        finally:
            other.close()
        rows.put("lock_probe", {"id": event.position})


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # PostgreSQL locks rows
def test_a_batch_is_handled_without_holding_the_write_lock(app: TradingApp, tmp_path: Path) -> None:
    start_session(app)
    home = tmp_path / "home"
    engine, schema = engines(None, home)
    store = SqlReadStore(engine, schema)
    source = StoredEventSource(eventsourcing_env(None, home))
    try:
        probe = TakesTheWriteLock(home / "ais.sqlite")
        assert Projector(source, store, [probe]).run_once() == source.head()
        assert len(list(store.dump(probe))) == source.head()
    finally:
        store.close()
        source.close()
