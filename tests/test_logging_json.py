"""JSON log lines: the request id ties an HTTP call to its approvals and events, and no
secret reaches the log, on real flows captured at DEBUG."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from typer.testing import CliRunner

from adapters.keys import load_keyring
from adapters.logging_json import configure_logging
from adapters.settings import Settings
from interfaces.cli import app as cli_app
from tests.conftest import START, AppFactory, ReadModels
from tests.http_helpers import place, running_api

HMAC_SECRET = "h" * 24 + "mac-secret-value"
ENVIRONMENT = {
    "AIS_RISK_HMAC_KEYS": f"k9:{HMAC_SECRET}",
    "AIS_EXCHANGE_API_KEY": "exchange-api-key-0123456789",
    "AIS_EXCHANGE_API_SECRET": "exchange-api-secret-9876543210",
    "AIS_WEBHOOK_SECRET": "webhook-shared-secret-" + "w" * 20,
}
WRONG_TOKEN = "ais_not-a-real-token-but-still-a-secret"


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """Everything logged, as the processes log it (JSON lines, DEBUG), with the secrets of
    ENVIRONMENT set; the handler goes afterwards (pytest's own come and go per phase)."""
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    root = logging.getLogger()
    level = root.level
    out = io.StringIO()
    handler = configure_logging("DEBUG", stream=out)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    parsed = [json.loads(line) for line in out.getvalue().splitlines()]
    for entry in parsed:
        assert {"ts", "level", "logger", "event"} <= set(entry), entry
    return parsed


def matching(entries: list[dict[str, Any]], event: str, rid: str) -> list[dict[str, Any]]:
    return [e for e in entries if e["event"] == event and e.get("request_id") == rid]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_request_id_ties_the_call_to_its_approvals_and_events_and_no_secret_is_logged(
    captured: io.StringIO, make_app: AppFactory, read_models: ReadModels, tmp_path: Path
) -> None:
    trading = make_app(keys=load_keyring(Settings()))  # signs with AIS_RISK_HMAC_KEYS
    with running_api(trading, read_models, tmp_path / "api") as api:
        ops = {**api.auth("operator"), "X-Request-ID": "req-start-1"}
        started = api.client.post(
            "/v1/sessions", json={"mode": "paper", "starting_capital": "5000"}, headers=ops
        )
        assert started.status_code == 201, started.text
        assert started.headers["X-Request-ID"] == "req-start-1"
        trading.observe_mark("BTC-USDT", Decimal("50000"))  # outside any request
        order_id = place(trading, UUID(started.json()["session_id"]))
        kill = {**api.auth("operator"), "X-Request-ID": "req-kill-1"}
        engaged = api.client.post("/v1/kill-switch", json={"reason": "drill"}, headers=kill)
        assert engaged.status_code == 200, engaged.text
        read = api.get("/v1/portfolio")
        assert read.status_code == 200 and len(read.headers["X-Request-ID"]) == 32
        bad = {"Authorization": f"Bearer {WRONG_TOKEN}", "X-Request-ID": "bad id\n{}"}
        refused = api.client.get("/v1/portfolio", headers=bad)
        assert refused.status_code == 401
        assert refused.headers["X-Request-ID"] != "bad id\n{}"  # not echoed: made anew
        secret = ENVIRONMENT["AIS_WEBHOOK_SECRET"]
        signal = {
            "id": "tv-1",
            "timestamp": START.isoformat(),
            "instrument": "BTC-USDT",
            "direction": "long",
            "confidence": "0.7",
            "reason": "breakout",
        }
        in_body = api.client.post(
            "/v1/signals/webhook",
            json={**signal, "secret": secret},
            headers={"X-Request-ID": "req-hook-1"},
        )
        assert in_body.status_code == 202, in_body.text
        raw = json.dumps({**signal, "id": "tv-2"}).encode()
        digest = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        signed = api.client.post(
            "/v1/signals/webhook",
            content=raw,
            headers={"Content-Type": "application/json", "X-AIS-Signature": f"sha256={digest}"},
        )
        assert signed.status_code == 202, signed.text
        tokens = list(api.tokens.values())
    checked = CliRunner().invoke(cli_app, ["config", "check"], env={"AIS_HOME": str(tmp_path)})
    assert checked.exit_code == 0, checked.output  # loads the exchange key and secret

    text = captured.getvalue() + checked.output
    for value in [*ENVIRONMENT.values(), HMAC_SECRET, WRONG_TOKEN, digest, *tokens]:
        assert value not in text
    entries = lines(captured)
    [approved] = matching(entries, "command approved", "req-start-1")
    assert approved["command_type"] == "StartSession"
    assert approved["target_id"] == started.json()["session_id"]
    assert approved["approval_id"] and approved["positions"]
    assert max(approved["positions"]) <= started.json()["position"]
    assert matching(entries, "kill switch engaged", "req-kill-1")
    [cancelled] = matching(entries, "command approved", "req-kill-1")
    assert (cancelled["command_type"], cancelled["target_id"]) == ("CancelOrder", str(order_id))
    saved = matching(entries, "events saved", "req-kill-1")
    assert {p for e in saved for p in e["positions"]} >= set(cancelled["positions"])
    assert any("RiskDesk.KillSwitchEngaged" in e["events"] for e in saved)
    [hook] = matching(entries, "events saved", "req-hook-1")
    assert hook["events"][-1] == "SignalInbox.SignalReceived"
    assert max(hook["positions"]) == in_body.json()["position"]
    calls = [e for e in entries if e["event"] == "http request"]
    assert {(e["path"], e["status"]) for e in calls} >= {
        ("/v1/sessions", 201),
        ("/v1/kill-switch", 200),
        ("/v1/portfolio", 401),
        ("/v1/signals/webhook", 202),
    }
    outside = [e for e in entries if e["event"] == "command approved" and "request_id" not in e]
    assert [e["command_type"] for e in outside] == ["PlaceOrder"]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_no_access_log_drops_the_request_lines_and_keeps_the_rest(
    captured: io.StringIO, make_app: AppFactory, read_models: ReadModels, tmp_path: Path
) -> None:
    trading = make_app(keys=load_keyring(Settings()))
    with running_api(trading, read_models, tmp_path / "api", access_log=False) as api:
        read = api.client.get(
            "/v1/portfolio", headers={**api.auth("viewer"), "X-Request-ID": "req-read-1"}
        )
        started = api.client.post(
            "/v1/sessions",
            json={"mode": "paper", "starting_capital": "1000"},
            headers={**api.auth("operator"), "X-Request-ID": "req-start-2"},
        )
    assert read.headers["X-Request-ID"] == "req-read-1"  # the id still travels
    assert started.status_code == 201, started.text
    entries = lines(captured)
    assert [e for e in entries if e["event"] == "http request"] == []
    assert matching(entries, "command approved", "req-start-2")


def test_secrets_are_redacted_by_key_by_shape_and_by_value(captured: io.StringIO) -> None:
    """What a careless log call would leak: each of the three redactions catches it."""
    log = logging.getLogger("ais.test")
    token = "ais_abcdefghijklmnopqrstuvwxyz"
    log.warning(
        "calling with Authorization: Bearer %s and api_key=%s, hmac %s",
        token,
        "plain-key-123456",
        HMAC_SECRET,
        extra={"headers": {"authorization": f"Bearer {token}"}, "webhook_secret": "x" * 40},
    )
    log.error("store at postgresql://ais:pg-password-1@db:5432/ais is down")
    text = captured.getvalue()
    for value in (token, "plain-key-123456", HMAC_SECRET, "x" * 40, "pg-password-1"):
        assert value not in text
    first, second = lines(captured)
    assert first["headers"] == {"authorization": "***"} and first["webhook_secret"] == "***"
    assert "Bearer ***" in first["event"] and "api_key=***" in first["event"]
    assert second["event"] == "store at postgresql://ais:***@db:5432/ais is down"
