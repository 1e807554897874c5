"""Shared fixtures: real SQLite files and the real PostgreSQL server, one schema per test."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from adapters.clock import SeededIds, SimulatedClock
from adapters.event_log import StoredEventSource
from adapters.persistence import eventsourcing_env
from adapters.read_store import SqlReadStore, engines
from adapters.settings import PROJECT_ROOT, load_catalog, load_limits
from application.trading import TradingApp
from domain.approval import KeyRing
from domain.commands import StartSession
from domain.limits import RiskLimits
from domain.values import Mode
from projections.registry import all_projections
from projections.runner import Projector
from projections.spec import Projection


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """CLI commands run in-process configure the root logger; give the next test a clean one."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


PG_DSN = os.environ.get("AIS_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
SECRET = "s" * 40
KEYS = KeyRing.parse(f"k1:{SECRET}")
START = datetime(2024, 1, 2, 9, 0, tzinfo=UTC)
CONFIG = PROJECT_ROOT / "config"


def postgres_available() -> bool:
    try:
        with psycopg.connect(PG_DSN, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def require_postgres() -> None:
    """Skip locally without a server; in CI (AIS_REQUIRE_POSTGRES=1) fail instead."""
    if postgres_available():
        return
    if os.environ.get("AIS_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL required but not reachable at {PG_DSN}")
    pytest.skip("PostgreSQL not reachable")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A database URL with a fresh schema, dropped afterwards."""
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_DSN}?schema={schema}"
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """None means SQLite in tmp_path; otherwise a PostgreSQL URL with its own schema."""
    if request.param == "sqlite":
        yield None
    else:
        yield request.getfixturevalue("pg_url")


@pytest.fixture
def limits() -> RiskLimits:
    return load_limits(CONFIG / "risk.toml")


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(START)


AppFactory = Callable[..., TradingApp]


@pytest.fixture
def make_app(
    store_url: str | None, tmp_path: Path, clock: SimulatedClock, limits: RiskLimits
) -> Iterator[AppFactory]:
    """Build TradingApps on the test's store; several calls share the same database."""
    apps: list[TradingApp] = []

    def factory(**overrides: Any) -> TradingApp:
        options: dict[str, Any] = {
            "account_id": "acct",
            "limits": limits,
            "catalog": load_catalog(CONFIG / "instruments.toml"),
            "keys": KEYS,
            "clock": clock,
            "ids": SeededIds(len(apps) + 1),
            "env": eventsourcing_env(store_url, tmp_path / "home"),
        }
        options.update(overrides)
        app = TradingApp(**options)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.close()


@pytest.fixture
def app(make_app: AppFactory) -> TradingApp:
    return make_app()


def start_session(app: TradingApp, capital: str = "100000") -> uuid.UUID:
    """A funded, active session with fresh BTC and ETH marks."""
    session_id = app.ids()
    app.execute(
        StartSession(
            session_id=session_id,
            mode=Mode.PAPER,
            starting_capital=Decimal(capital),
            config_digest="test",
        )
    )
    app.observe_mark("BTC-USDT", Decimal("50000"))
    app.observe_mark("ETH-USDT", Decimal("3000"))
    return session_id


def all_events(app: TradingApp) -> list[Any]:
    """Every stored notification, in log order."""
    return list(app.recorder.select_notifications(start=None, limit=1_000_000))


def kinds(notifications: list[Any]) -> list[str]:
    """`Aggregate.Event` names of stored notifications, e.g. 'Order.Placed'."""
    return [n.topic.split(":", 1)[1] for n in notifications]


@pytest.fixture
def read_models(store_url: str | None, tmp_path: Path) -> Iterator[ReadModels]:
    """The read side on the test's store: event source, live store and projector."""
    engine, schema = engines(store_url, tmp_path / "home")
    source = StoredEventSource(eventsourcing_env(store_url, tmp_path / "home"))
    store = SqlReadStore(engine, schema)
    try:
        yield ReadModels(source, store, all_projections())
    finally:
        store.close()
        source.close()


@dataclass
class ReadModels:
    source: StoredEventSource
    store: SqlReadStore
    projections: list[Projection]

    def projector(self, batch_size: int = 1000) -> Projector:
        return Projector(self.source, self.store, self.projections, batch_size=batch_size)

    def scratch(self) -> SqlReadStore:
        return SqlReadStore(self.store.engine, self.store.schema, prefix="rs_")

    def rows(self, name: str) -> list[dict[str, Any]]:
        projection = next(p for p in self.projections if name in {t.name for t in p.tables})
        return [row for table, row in self.store.dump(projection) if table == name]
