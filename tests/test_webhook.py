"""POST /v1/signals/webhook: shared secret (HMAC header or body field), replay window,
unique ids, problem+json for bad input, and the signal recorded as an event."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapters.clock import SimulatedClock
from application.signal_inbox import recent_signals, signal_source
from tests.conftest import START, AppFactory, ReadModels
from tests.http_helpers import WEBHOOK_SECRET, Api, running_api, signal

URL = "/v1/signals/webhook"
D07 = Decimal("0.7")


@pytest.fixture
def api(make_app: AppFactory, read_models: ReadModels, tmp_path: Path) -> Iterator[Api]:
    with running_api(make_app(), read_models, tmp_path / "api") as running:
        running.http.state.webhook_secret = WEBHOOK_SECRET
        yield running


def post_signed(api: Api, body: dict[str, Any], key: str = WEBHOOK_SECRET) -> Any:
    raw = json.dumps(body).encode()
    digest = hmac.new(key.encode(), raw, hashlib.sha256).hexdigest()
    return api.client.post(
        URL,
        content=raw,
        headers={"Content-Type": "application/json", "X-AIS-Signature": f"sha256={digest}"},
    )


def test_secret_in_body_records_the_signal_as_an_event(api: Api) -> None:
    response = api.client.post(URL, json=signal())
    assert response.status_code == 202, response.text
    position = response.json()["position"]
    assert response.json()["signal_id"] == "tv-1"
    assert response.headers["X-AIS-Position"] == str(position)
    events = api.models.source.read(position - 1, 1)
    assert events[0].kind == "SignalInbox.SignalReceived"
    state = events[0].state
    assert state["direction"] == "long" and state["confidence"] == Decimal("0.7")
    assert state["expected_return"] == Decimal("0.012")
    assert "secret" not in json.dumps(state, default=str)
    assert api.client.post(URL, json=signal()).status_code == 409  # same id: a replay
    assert api.project() == position  # the read models fold past the new event kind
    assert api.get(f"/v1/portfolio?min_position={position}").status_code == 200
    [seen] = recent_signals(api.trading, api.trading.account_id, START, timedelta(minutes=5))
    assert (seen.signal_id, seen.instrument) == ("tv-1", "BTC-USDT")


def test_hmac_header_is_accepted_and_a_wrong_one_refused(api: Api) -> None:
    body = signal(id="h-1", secret=None)
    del body["secret"]
    assert post_signed(api, body).status_code == 202
    wrong = post_signed(api, {**body, "id": "h-2"}, key="x" * 40)
    assert wrong.status_code == 401
    assert wrong.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({**signal(), "secret": "wrong" * 8}, 401),
        ({k: v for k, v in signal().items() if k != "secret"}, 401),
        (signal(direction="sideways"), 422),
        (signal(confidence="1.5"), 422),
        (signal(instrument="BTC USDT; drop"), 422),
        (signal(reason=""), 422),
        (signal(timestamp="yesterday"), 422),
        (signal(timestamp=(START - timedelta(seconds=61)).isoformat()), 401),
        (signal(timestamp=(START + timedelta(seconds=61)).timestamp()), 401),
    ],
)
def test_bad_requests_are_problems(api: Api, body: dict[str, Any], status: int) -> None:
    response = api.client.post(URL, json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == status


def test_window_follows_the_injected_clock_and_unix_seconds_work(api: Api) -> None:
    clock = api.trading.clock
    assert isinstance(clock, SimulatedClock)
    clock.advance(3600)
    late = START + timedelta(seconds=3600 - 30)
    response = api.client.post(URL, json=signal(id="u-1", timestamp=late.timestamp()))
    assert response.status_code == 202, response.text
    source = signal_source(api.trading, api.trading.account_id, clock, timedelta(seconds=60))
    [external] = source()
    assert (external.agent, external.direction, external.confidence) == ("webhook", 1, D07)
    assert "u-1" in external.reason
    clock.advance(120)
    assert source() == []


def test_not_json_and_unconfigured_secret(api: Api) -> None:
    response = api.client.post(URL, content=b"{nope", headers={"Content-Type": "text/plain"})
    assert response.status_code == 400
    api.http.state.webhook_secret = "short"
    response = api.client.post(URL, json=signal(id="z"))
    assert response.status_code == 403
    assert "AIS_WEBHOOK_SECRET" in response.json()["detail"]


def test_the_trading_loop_adds_recent_external_signals(tmp_path: Path) -> None:
    """A webhook signal (no agents at all) reaches decide() and is logged as a signal."""
    from adapters.alerts import MemoryAlerts
    from adapters.clock import SeededIds
    from adapters.paper_exchange import PaperExchange
    from adapters.persistence import eventsourcing_env
    from adapters.settings import PROJECT_ROOT, load_catalog, load_limits
    from application.allocation import AllocationPolicy
    from application.loop import LoopConfig, TradingLoop
    from application.order_router import OrderRouter
    from application.signal_inbox import record_signal
    from application.trading import TradingApp
    from domain.commands import StartSession
    from domain.values import Mode
    from tests.conftest import KEYS, all_events
    from tests.test_trading_loop import NoRegime, crash_market

    config = PROJECT_ROOT / "config"
    (tmp_path / "instruments.toml").write_text(
        '[instruments.BTC-PERP]\nbase = "BTC"\nquote = "USD"\ntick_size = "1"\n'
        'lot_size = "0.0001"\nmin_notional = "1"\n'
    )
    catalog = load_catalog(tmp_path / "instruments.toml")
    limits = load_limits(config / "risk.toml")
    market = crash_market()
    ticks = market.clock_ticks()[:30]
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
                config_digest="webhook",
            )
        )
        paper = PaperExchange(catalog, market, clock, {"USD": Decimal(100000)})
        loop = TradingLoop(
            app,
            market,
            OrderRouter(app, paper, MemoryAlerts()),
            [],
            NoRegime(),
            session_id,
            AllocationPolicy(
                max_weight=Decimal("0.05"),
                max_gross=Decimal(1),
                max_order_notional=limits.max_order_notional,
            ),
            LoopConfig(decision_every=10, lookback=5),
            signal_source=signal_source(app, "acct", clock, timedelta(minutes=30)),
        )
        clock.set(ticks[5])
        record_signal(
            app,
            clock,
            "acct",
            signal_id="tv-loop",
            instrument="BTC-PERP",
            direction="long",
            confidence=Decimal("0.9"),
            expected_return=Decimal("0.02"),
            reason="external breakout",
            source="webhook",
            sent_at=clock(),
        )
        for tick in ticks[5:]:
            clock.set(tick)
            loop.step()
        decode = app.mapper.transcoder.decode
        logged = json.dumps(
            [decode(n.state) for n in all_events(app) if "DecisionLog" in n.topic], default=str
        )
        assert '"agent": "webhook"' in logged and "tv-loop" in logged
    finally:
        app.close()
