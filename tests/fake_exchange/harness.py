"""Wiring for exchange tests: a ccxt gateway on the fake venue, quick timeouts, orders."""

from __future__ import annotations

import random
import time
from decimal import Decimal
from typing import Any
from uuid import UUID

from adapters.alerts import MemoryAlerts
from adapters.exchange.ccxt_gateway import CcxtGateway, GatewayConfig
from adapters.settings import PROJECT_ROOT, load_catalog
from application.trading import TradingApp
from domain.commands import PlaceOrder
from domain.values import InstrumentCatalog, OrderType, Side
from tests.fake_exchange.server import API_KEY, SECRET, FakeBinance

CONFIG = PROJECT_ROOT / "config"
TIMEOUT_MS = 500  # ccxt's per-request timeout in these tests
SLOW = 0.8  # seconds a stalled or lost request takes: past the client's timeout


class ManualClock:
    """Monotonic seconds that move only when told to (breaker cooldowns, backoff waits)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def catalog() -> InstrumentCatalog:
    return load_catalog(CONFIG / "instruments.toml")


def gateway_config(fake: FakeBinance, **overrides: Any) -> GatewayConfig:
    options: dict[str, Any] = {
        "venue": "binance",
        "market": "spot",
        "api_key": API_KEY,
        "secret": SECRET,
        "base_url": fake.base_url,
        "timeout_ms": TIMEOUT_MS,
        "recv_window_ms": 5000,
        "ccxt_rate_limit_ms": 1,
        "requests_per_second": 1000.0,
        "burst": 1000,
        "retries": 2,
        "backoff_base_seconds": 0.01,
        "backoff_cap_seconds": 0.05,
        "breaker_failures": 3,
        "breaker_cooldown_seconds": 5.0,
    }
    options.update(overrides)
    return GatewayConfig(**options)


def make_gateway(
    fake: FakeBinance,
    alerts: MemoryAlerts | None = None,
    clock: ManualClock | None = None,
    **overrides: Any,
) -> CcxtGateway:
    return CcxtGateway(
        gateway_config(fake, **overrides),
        catalog(),
        alerts=alerts or MemoryAlerts(),
        monotonic=clock or time.monotonic,
        sleep=clock.sleep if clock else time.sleep,
        rng=random.Random(1),
    )


def place(
    app: TradingApp,
    session_id: UUID,
    quantity: str = "0.01",
    price: str | None = "50000",
    *,
    instrument: str = "BTC-USDT",
    side: Side = Side.BUY,
) -> UUID:
    """An approved PENDING_NEW order (LIMIT unless price is None)."""
    order_id = app.ids()
    app.execute(
        PlaceOrder(
            order_id=order_id,
            session_id=session_id,
            instrument=instrument,
            side=side,
            order_type=OrderType.MARKET if price is None else OrderType.LIMIT,
            quantity=Decimal(quantity),
            limit_price=None if price is None else Decimal(price),
        )
    )
    return order_id
