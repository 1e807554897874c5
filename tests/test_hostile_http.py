"""Hostile HTTP input: huge, malformed and mistyped bodies, SQL-looking text, non-finite
numbers, unicode edge cases and traversal-looking paths. Every case is a 4xx
problem+json (never a 500), the server keeps serving, and nothing refused reaches the log.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect

from adapters.event_log import log_digest
from tests.conftest import AppFactory, ReadModels, start_session
from tests.http_helpers import WEBHOOK_SECRET, Api, place, running_api, signal

WEBHOOK = "/v1/signals/webhook"
MB10 = 10 * 1024 * 1024
SQL = [
    "'; DROP TABLE stored_events; --",
    '" OR 1=1 --',
    "x'); DELETE FROM rm_orders WHERE ('1'='1",
    "1; UPDATE rm_portfolio SET nav = 0",
]
UNICODE = [
    "\u202eevil\u202c reversed",  # right-to-left override
    "zero\u200bwidth\u200d\ufeff",
    "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627",  # Hebrew and Arabic
    "e\u0301\u0301\u0301 \U0001f4a5 \U00010348",  # combining marks, astral plane
]


@pytest.fixture
def api(make_app: AppFactory, read_models: ReadModels, tmp_path: Path) -> Iterator[Api]:
    """A session with one open order, projected; webhook secret configured."""
    trading = make_app()
    session_id = start_session(trading)
    with running_api(trading, read_models, tmp_path / "api") as running:
        running.http.state.webhook_secret = WEBHOOK_SECRET
        running.extra["session_id"] = session_id
        running.extra["order_id"] = place(trading, session_id)
        running.project()
        yield running


def snapshot(api: Api) -> tuple[int, str, list[str]]:
    """Head of the log, digest of every stored record, and the database's tables."""
    tables = sorted(inspect(api.models.store.engine).get_table_names(api.models.store.schema))
    return api.head(), log_digest(api.models.source.log), tables


def problem(response: Any, *statuses: int) -> dict[str, Any]:
    """A problem+json answer with one of `statuses` that leaks no traceback."""
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == response.status_code
    assert "Traceback" not in response.text
    return body


def control_routes(api: Api) -> list[str]:
    session_id, order_id = api.extra["session_id"], api.extra["order_id"]
    return [
        "/v1/kill-switch",
        "/v1/kill-switch/reset",
        "/v1/sessions",
        f"/v1/sessions/{session_id}/halt",
        f"/v1/orders/{order_id}/cancel",
    ]


def post_raw(api: Api, path: str, content: Any, content_type: str | None) -> Any:
    headers = api.auth("operator" if path != WEBHOOK else None)
    if content_type is not None:
        headers["Content-Type"] = content_type
    return api.client.post(path, content=content, headers=headers)


@pytest.mark.parametrize("store_url", [None])
def test_huge_and_malformed_bodies_are_refused_and_the_server_stays_up(api: Api) -> None:
    before = snapshot(api)
    huge = json.dumps({"reason": "x" * MB10}).encode()
    for path in [WEBHOOK, *control_routes(api)]:
        problem(post_raw(api, path, huge, "application/json"), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts what arrives
        for _ in range(160):
            yield b"x" * 65536

    problem(post_raw(api, WEBHOOK, chunks(), "application/json"), 413)
    problem(post_raw(api, "/v1/kill-switch", chunks(), "application/json"), 413)
    deep = b"[" * 50_000 + b"]" * 50_000
    malformed = [b"", b"{", b"null", b"[]", b'"reason"', b"\xff\xfe\x00", deep[:60_000]]
    for body in malformed:
        problem(post_raw(api, WEBHOOK, body, "application/json"), 400, 401)
        for path in control_routes(api):
            problem(post_raw(api, path, body, "application/json"), 400, 422)
    assert api.client.get("/healthz").status_code == 200
    assert snapshot(api) == before
    ok = api.post("/v1/kill-switch", {"reason": "still serving"})
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("store_url", [None])
def test_wrong_content_types_are_refused(api: Api) -> None:
    before = snapshot(api)
    reason = json.dumps({"reason": "drill"}).encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        for path in control_routes(api):
            problem(post_raw(api, path, reason, content_type), 415, 422)
    form = post_raw(api, "/v1/kill-switch", b"reason=drill", "application/x-www-form-urlencoded")
    problem(form, 415, 422)
    xml = b"<signal><id>1</id></signal>"
    problem(post_raw(api, WEBHOOK, xml, "application/xml"), 400, 415)
    assert snapshot(api) == before


@pytest.mark.parametrize("store_url", [None])
def test_non_finite_and_absurd_numbers_are_refused(api: Api) -> None:
    before = snapshot(api)
    raw_numbers = [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400"]
    for number in raw_numbers:
        body = json.dumps(signal(id=f"n-{number.decode()}", confidence="@")).encode()
        body = body.replace(b'"@"', number)
        problem(post_raw(api, WEBHOOK, body, "application/json"), 422)
        body = json.dumps(signal(id="e", expected_return="@")).encode().replace(b'"@"', number)
        problem(post_raw(api, WEBHOOK, body, "application/json"), 422)
        capital = b'{"mode": "paper", "starting_capital": ' + number + b"}"
        problem(post_raw(api, "/v1/sessions", capital, "application/json"), 422)
    for text in ("NaN", "Infinity", "1e400", "1E+400", "-1", "0x10", "1_000", "-0", "0"):
        if text not in ("-0", "0"):  # a confidence of zero is allowed
            problem(api.client.post(WEBHOOK, json=signal(id=f"s-{text}", confidence=text)), 422)
        problem(api.post("/v1/sessions", {"mode": "paper", "starting_capital": text}), 422)
    assert snapshot(api) == before
    # Negative zero is zero: accepted, and stored without its sign.
    accepted = api.client.post(WEBHOOK, json=signal(id="zero", confidence=-0.0))
    assert accepted.status_code == 202, accepted.text
    [event] = api.models.source.read(accepted.json()["position"] - 1, 1)
    assert event.state["confidence"] == 0 and not event.state["confidence"].is_signed()


def test_sql_looking_text_is_stored_verbatim_or_refused(api: Api) -> None:
    """Reasons and signal text are data, bound as parameters: stored as sent, tables kept."""
    order_id, session_id = api.extra["order_id"], api.extra["session_id"]
    tables = snapshot(api)[2]
    cancel = api.post(f"/v1/orders/{order_id}/cancel", {"reason": SQL[2]})
    assert cancel.status_code == 200, cancel.text
    kill = api.post("/v1/kill-switch", {"reason": SQL[0]})
    assert kill.status_code == 200, kill.text
    reset = api.post("/v1/kill-switch/reset", {"reason": SQL[1]})
    assert reset.status_code == 200, reset.text
    halt = api.post(f"/v1/sessions/{session_id}/halt", {"reason": SQL[3]})
    assert halt.status_code == 200, halt.text
    webhook = api.client.post(WEBHOOK, json=signal(id=SQL[0], reason=SQL[1]))
    assert webhook.status_code == 202, webhook.text
    problem(api.client.post(WEBHOOK, json=signal(id="i", instrument=SQL[0])), 422)
    head = api.project()
    decisions = api.get(f"/v1/risk/decisions?limit=500&min_position={head}").json()["items"]
    reasons = {d["reason"] for d in decisions}
    assert {SQL[0], SQL[1]} <= reasons
    order = api.get(f"/v1/orders/{order_id}").json()
    assert order["status"] == "CANCELED" and order["end_reason"].startswith(SQL[2])
    sessions = api.get("/v1/sessions").json()["items"]
    assert sessions[0]["last_reason"].startswith(SQL[3])
    [signal_event] = api.models.source.read(webhook.json()["position"] - 1, 1)
    assert (signal_event.state["signal_id"], signal_event.state["reason"]) == (SQL[0], SQL[1])
    # Query parameters and cursors: refused, or compared literally as bound values.
    orders = api.get("/v1/orders").json()["items"]
    for text in SQL:
        problem(api.get("/v1/orders", params={"instrument": text}), 422)
        problem(api.get("/v1/orders", params={"status": text}), 422)
        problem(api.get("/v1/orders", params={"session_id": text}), 422)
        problem(api.get("/v1/risk/decisions", params={"guard": text}), 422)
        problem(api.get("/v1/orders", params={"cursor": text}), 400)
        problem(api.get(f"/v1/orders/{text}"), 404, 422)
        crafted = json.dumps({"r": "orders", "k": [text, text]}).encode()
        cursor = base64.urlsafe_b64encode(crafted).decode().rstrip("=")
        page = api.get("/v1/orders", params={"cursor": cursor})
        after = [o for o in orders if (o["placed_at"], o["order_id"]) > (text, text)]
        assert page.status_code == 200 and page.json()["items"] == after  # compared literally
        events = json.dumps({"r": "events", "k": [text]}).encode()
        bad = base64.urlsafe_b64encode(events).decode()
        problem(api.get("/v1/events", role="auditor", params={"cursor": bad}), 400)
    assert snapshot(api)[2] == tables
    assert api.get("/v1/orders").json()["items"] == orders
    assert api.get("/v1/portfolio").json()["nav"] is not None


def test_unicode_edge_cases_are_kept_exactly_or_refused(api: Api) -> None:
    for i, text in enumerate(UNICODE):
        engaged = api.post("/v1/kill-switch", {"reason": text})
        assert engaged.status_code == 200, engaged.text
        assert api.post("/v1/kill-switch/reset", {"reason": f"reset {i}"}).status_code == 200
        sent = api.client.post(WEBHOOK, json=signal(id=f"u{i}\u200b", reason=text))
        assert sent.status_code == 202, sent.text
        [event] = api.models.source.read(sent.json()["position"] - 1, 1)
        assert event.state["reason"] == text
    before = snapshot(api)
    refused = [
        "\ud800 lone surrogate",
        "nul\x00byte",
        "bell\x07",
        "x" * 10_000,
    ]
    for text in refused:
        raw = json.dumps({"reason": text}).encode()  # \ud800 travels as a JSON escape
        for path in control_routes(api):
            if path != "/v1/sessions":
                problem(post_raw(api, path, raw, "application/json"), 422)
        body = json.dumps(signal(id="bad", reason=text)).encode()
        problem(post_raw(api, WEBHOOK, body, "application/json"), 422)
        body = json.dumps(signal(id=text, secret=WEBHOOK_SECRET)).encode()
        problem(post_raw(api, WEBHOOK, body, "application/json"), 422)
    lone = json.dumps(signal(id="bad", secret="\udfff")).encode()
    problem(post_raw(api, WEBHOOK, lone, "application/json"), 401)
    assert snapshot(api) == before
    head = api.project()
    decisions = api.get(f"/v1/risk/decisions?limit=500&min_position={head}").json()["items"]
    assert set(UNICODE) <= {d["reason"] for d in decisions}


@pytest.mark.parametrize("store_url", [None])
def test_traversal_looking_paths_are_not_found_or_invalid(api: Api) -> None:
    before = snapshot(api)
    for path in [
        "/v1/orders/..%2F..%2Fetc%2Fpasswd",
        "/v1/orders/../../etc/passwd",
        "/v1/audit/proof/..%2F..%2Fetc%2Fpasswd",
        "/v1/audit/proof/-1",
        "/v1/audit/proof/99999999999999999999999",
        "/v1/sessions/%2e%2e%2f%2e%2e/halt",
    ]:
        role = "auditor" if "audit" in path else "operator" if "halt" in path else "viewer"
        call = api.client.post if path.endswith("halt") else api.client.get
        kwargs: dict[str, Any] = {"json": {"reason": "x"}} if path.endswith("halt") else {}
        problem(call(path, headers=api.auth(role), **kwargs), 404, 405, 422)
    assert snapshot(api) == before
