"""Helpers for the HTTP tests: an app on the test's store, tokens per role, seed data."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from application.trading import TradingApp
from domain.commands import PlaceOrder
from domain.values import OrderType, Side
from interfaces.http.app import create_app
from interfaces.http.services import BackgroundProjector, Services
from interfaces.http.tokens import TokenStore, create_token
from tests.conftest import START, ReadModels

with warnings.catch_warnings():  # starlette nudges towards httpx2, which is not installed
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

NAMES = {"viewer": "viewer-vic", "operator": "ops-alice", "auditor": "audit-ann"}


@dataclass
class Api:
    client: TestClient
    http: FastAPI
    services: Services
    trading: TradingApp
    models: ReadModels
    tokens: dict[str, str]
    token_file: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def auth(self, role: str | None) -> dict[str, str]:
        return {} if role is None else {"Authorization": f"Bearer {self.tokens[role]}"}

    def get(self, path: str, role: str | None = "viewer", **kwargs: Any) -> Any:
        return self.client.get(path, headers=self.auth(role), **kwargs)

    def post(self, path: str, body: Any, role: str | None = "operator") -> Any:
        return self.client.post(path, json=body, headers=self.auth(role))

    def project(self) -> int:
        self.models.projector().run_once()
        return self.models.source.head()

    def head(self) -> int:
        return self.models.source.head()


@contextmanager
def running_api(
    trading: TradingApp,
    models: ReadModels,
    home: Path,
    *,
    max_wait: float = 5.0,
    background: bool = False,
    access_log: bool = True,
) -> Iterator[Api]:
    """The app on the test's store; `background` follows the log in a thread."""
    home.mkdir(parents=True, exist_ok=True)
    token_file = home / "api-tokens.toml"
    now = datetime(2024, 1, 2, tzinfo=UTC)
    tokens = {role: create_token(token_file, name, role, now) for role, name in NAMES.items()}
    models.projector()  # creates the read-model tables
    services = Services(
        store=models.store,
        events=models.source,
        tokens=TokenStore(token_file, recheck_seconds=0.0),
        trading=trading,
        config_digest="test-config",
        max_wait_seconds=max_wait,
        projector=BackgroundProjector(models.projector(), 0.01) if background else None,
        event_env=dict(models.source.log.env),  # the stored log, for /v1/audit/*
        audit_public_key=home / "keys" / "audit-ed25519.pub.pem",
    )
    http = create_app(services=services, access_log=access_log)
    with TestClient(http, raise_server_exceptions=False) as client:
        yield Api(client, http, services, trading, models, tokens, token_file)


def place(
    app: TradingApp,
    session_id: uuid.UUID,
    *,
    instrument: str = "BTC-USDT",
    side: str = "BUY",
    quantity: str = "0.01",
    price: str = "50000",
) -> uuid.UUID:
    order_id = app.ids()
    app.execute(
        PlaceOrder(
            order_id=order_id,
            session_id=session_id,
            instrument=instrument,
            side=Side(side),
            order_type=OrderType.LIMIT,
            quantity=Decimal(quantity),
            limit_price=Decimal(price),
        )
    )
    return order_id


def fill(app: TradingApp, order_id: uuid.UUID, quantity: str, price: str, fee: str) -> None:
    app.record_fill(
        order_id,
        trade_id=f"{order_id}-{quantity}-{price}",
        quantity=Decimal(quantity),
        price=Decimal(price),
        fee=Decimal(fee),
        filled_at=app.clock(),
    )


def no_floats(value: Any, where: str = "$") -> None:
    """Money and ratios are strings: no JSON number in a body may be a float."""
    if isinstance(value, float):
        raise AssertionError(f"{where} is a float: {value!r}")
    if isinstance(value, dict):
        for key, item in value.items():
            no_floats(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            no_floats(item, f"{where}[{i}]")


WEBHOOK_SECRET = "s" * 40


def signal(**overrides: Any) -> dict[str, Any]:
    """A valid TradingView-style webhook body, its secret inside."""
    body: dict[str, Any] = {
        "id": "tv-1",
        "timestamp": START.isoformat(),
        "instrument": "BTC-USDT",
        "direction": "long",
        "confidence": "0.7",
        "expected_return": 0.012,
        "reason": "breakout above the 20-day high",
        "secret": WEBHOOK_SECRET,
    }
    body.update(overrides)
    return body
