"""Build a TradingApp from settings: the one place adapters meet the application."""

from __future__ import annotations

from adapters.clock import random_ids, system_clock
from adapters.keys import load_keyring
from adapters.persistence import eventsourcing_env
from adapters.settings import Settings, load_catalog, load_limits
from application.ports import Clock, IdFactory
from application.trading import TradingApp


def build_app(
    settings: Settings, *, clock: Clock = system_clock, ids: IdFactory = random_ids
) -> TradingApp:
    return TradingApp(
        account_id=settings.account_id,
        limits=load_limits(settings.config_dir / "risk.toml"),
        catalog=load_catalog(settings.config_dir / "instruments.toml"),
        keys=load_keyring(settings),
        clock=clock,
        ids=ids,
        env=eventsourcing_env(settings.database_url, settings.home),
    )
