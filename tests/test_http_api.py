"""The HTTP API on real SQLite files and real PostgreSQL: auth, problems, reads, control."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from domain.approval import KeyRing
from domain.commands import CancelOrder
from interfaces.http.auth import route_rules
from interfaces.http.problems import ProblemError
from interfaces.http.queries import ReadQueries
from interfaces.http.tokens import TokenStore, create_token, hash_token, revoke_token
from projections.registry import all_projections
from tests.conftest import AppFactory, ReadModels, start_session
from tests.http_helpers import NAMES, Api, fill, no_floats, place, running_api

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ROLES = ("viewer", "operator", "auditor")
VIEW = frozenset(ROLES)
DESIGN_ROUTES = {
    ("GET", "/v1/portfolio"): VIEW,
    ("GET", "/v1/portfolio/history"): VIEW,
    ("GET", "/v1/exposure"): VIEW,
    ("GET", "/v1/positions"): VIEW,
    ("GET", "/v1/orders"): VIEW,
    ("GET", "/v1/orders/{order_id}"): VIEW,
    ("GET", "/v1/risk/decisions"): VIEW,
    ("GET", "/v1/reconciliation"): VIEW,
    ("GET", "/v1/sessions"): VIEW,
    ("GET", "/v1/events"): frozenset({"auditor"}),
    ("GET", "/v1/audit/export"): frozenset({"auditor"}),
    ("POST", "/v1/kill-switch"): frozenset({"operator"}),
    ("POST", "/v1/kill-switch/reset"): frozenset({"operator"}),
    ("POST", "/v1/sessions"): frozenset({"operator"}),
    ("POST", "/v1/sessions/{session_id}/halt"): frozenset({"operator"}),
    ("POST", "/v1/orders/{order_id}/cancel"): frozenset({"operator"}),
}
OPEN_PATHS = {
    "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc",
    "/", "/console",  # the console's page and static files (no data: it signs in to /v1)
}
# Guarded but not in the OpenAPI schema: the console's never-ending event stream.
UNPUBLISHED = {("GET", "/v1/stream")}
# No bearer token, but authenticated by the shared webhook secret (tests/test_webhook.py).
SHARED_SECRET_PATHS = {"/v1/signals/webhook"}


@pytest.fixture
def api(make_app: AppFactory, read_models: ReadModels, tmp_path: Path) -> Iterator[Api]:
    with running_api(make_app(), read_models, tmp_path / "api") as running:
        yield running


@pytest.fixture
def sqlite_api(tmp_path: Path, clock: Any, limits: Any) -> Iterator[Api]:
    """SQLite only, for behaviour that does not depend on the store."""
    from adapters.clock import SeededIds
    from adapters.event_log import StoredEventSource
    from adapters.persistence import eventsourcing_env
    from adapters.read_store import SqlReadStore, engines
    from adapters.settings import load_catalog
    from application.trading import TradingApp
    from projections.registry import all_projections
    from tests.conftest import CONFIG, KEYS

    home = tmp_path / "home"
    trading = TradingApp(
        account_id="acct",
        limits=limits,
        catalog=load_catalog(CONFIG / "instruments.toml"),
        keys=KEYS,
        clock=clock,
        ids=SeededIds(1),
        env=eventsourcing_env(None, home),
    )
    engine, schema = engines(None, home)
    source = StoredEventSource(eventsourcing_env(None, home))
    models = ReadModels(source, SqlReadStore(engine, schema), all_projections())
    try:
        with running_api(trading, models, tmp_path / "api") as running:
            yield running
    finally:
        models.store.close()
        source.close()
        trading.close()


def assert_problem(response: Any, status: int, slug: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["type"], str) and body["type"]
    if slug is not None:
        assert body["type"] == f"urn:ais:problem:{slug}"
    return body


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", str(uuid.UUID(int=7, version=4)), path)


# --- auth ------------------------------------------------------------------------------------
def test_every_protected_route_needs_a_token_and_the_right_role(sqlite_api: Api) -> None:
    api = sqlite_api
    protected: dict[tuple[str, str], frozenset[str]] = {}
    for rule in route_rules(api.http.router.routes):
        if rule.roles is None:
            assert rule.path in OPEN_PATHS | SHARED_SECRET_PATHS, f"{rule.path} is open"
            continue
        for method in rule.methods:
            protected[(method, rule.path)] = rule.roles
    # The rules cover every operation the OpenAPI schema publishes.
    schema = api.client.get("/openapi.json").json()
    published = {
        (method.upper(), path) for path, item in schema["paths"].items() for method in item
    }
    bearer = {k for k in published if k[1].startswith("/v1") and k[1] not in SHARED_SECRET_PATHS}
    assert bearer == set(protected) - UNPUBLISHED
    # Every route DESIGN.md names exists with the documented role matrix.
    for key, roles in DESIGN_ROUTES.items():
        assert protected.get(key) == roles, key
    head = api.head()
    for (method, path), roles in sorted(protected.items()):
        url = concrete(path)
        # No token, a malformed header, an unknown token: 401 before the body is even read.
        for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer nope"}):
            response = api.client.request(
                method,
                url,
                headers={**headers, "content-type": "application/json"},
                content=b"{not json",
            )
            body = assert_problem(response, 401, "unauthorized")
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert body["instance"] == url
        for role in ROLES:
            if role in roles and (method, path) in UNPUBLISHED:
                continue  # answers with a stream that never ends (tests/test_console_live.py)
            response = api.client.request(method, url, headers=api.auth(role), json={})
            if role in roles:
                assert response.status_code not in (401, 403), (method, path, role)
            else:
                body = assert_problem(response, 403, "forbidden")
                assert role in body["detail"]
    assert api.head() == head  # nothing refused above reached the log


def test_open_routes_need_no_token(sqlite_api: Api) -> None:
    api = sqlite_api
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert api.client.get("/openapi.json").status_code == 200
    assert api.client.get("/docs").status_code == 200


def test_token_file_holds_hashes_and_changes_apply_without_restart(sqlite_api: Api) -> None:
    api = sqlite_api
    text = api.token_file.read_text()
    for role, token in api.tokens.items():
        assert token not in text
        assert hash_token(token) in text
        assert f'[tokens."{NAMES[role]}"]' in text
    assert api.token_file.stat().st_mode & 0o777 == 0o600
    revoke_token(api.token_file, NAMES["viewer"])
    assert_problem(api.get("/v1/portfolio", "viewer"), 401, "unauthorized")
    fresh = create_token(api.token_file, "late-comer", "viewer", api.trading.clock())
    assert api.client.get("/v1/portfolio", headers={"Authorization": f"Bearer {fresh}"}).is_success
    # A server looks at the file at most every `recheck_seconds`.
    store = TokenStore(api.token_file, recheck_seconds=0.3)
    assert store.authenticate(fresh) is not None
    revoke_token(api.token_file, "late-comer")
    assert store.authenticate(fresh) is not None  # not looked at again yet
    time.sleep(0.35)
    assert store.authenticate(fresh) is None
    # An unreadable token file lets nobody in (fail closed), and says why.
    api.token_file.write_text("tokens = [broken")
    assert_problem(api.get("/v1/portfolio", "operator"), 503, "token-store-unavailable")


# --- problems --------------------------------------------------------------------------------
def test_errors_are_problem_details_without_internals(
    sqlite_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = sqlite_api
    assert_problem(api.get("/v1/nowhere"), 404)
    assert api.get("/v1/nowhere").json()["type"] == "about:blank"
    gone = assert_problem(api.client.delete("/v1/portfolio", headers=api.auth("viewer")), 405)
    assert gone["title"] == "Method Not Allowed"
    invalid = assert_problem(api.get("/v1/orders?limit=0"), 422, "validation-error")
    assert invalid["errors"][0]["loc"] == ["query", "limit"]
    assert_problem(api.get("/v1/orders?limit=501"), 422, "validation-error")
    assert_problem(api.get("/v1/orders?status=LOST"), 422, "validation-error")
    assert_problem(api.get("/v1/orders/not-a-uuid"), 422, "validation-error")
    assert_problem(api.get("/v1/portfolio?min_position=-1"), 422, "validation-error")
    assert_problem(api.get("/v1/orders?cursor=%%%"), 400, "invalid-cursor")
    missing = assert_problem(api.get(f"/v1/orders/{uuid.uuid4()}"), 404, "not-found")
    assert "no order" in missing["detail"]

    def explode() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(api.services.reads, "portfolio", explode)
    crashed = api.get("/v1/portfolio")
    body = assert_problem(crashed, 500, "internal-error")
    assert "secret" not in crashed.text and "Traceback" not in crashed.text
    assert body["instance"] == "/v1/portfolio"

    def database_down() -> None:
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(api.services.reads, "portfolio", database_down)
    down = api.get("/v1/portfolio")
    assert_problem(down, 503, "store-unavailable")
    assert "connection refused" not in down.text and down.headers["retry-after"] == "1"
    # A read model whose table is gone (say, mid-rebuild): 503 as well, nothing leaked.
    with api.models.store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE rm_orders")
    gone = api.get("/v1/orders")
    assert_problem(gone, 503, "store-unavailable")
    assert "rm_orders" not in gone.text


def test_control_plane_refusals_map_to_problems(sqlite_api: Api) -> None:
    api = sqlite_api
    reset = assert_problem(
        api.post("/v1/kill-switch/reset", {"reason": "nothing engaged"}), 409,
        "illegal-transition",
    )
    assert "not engaged" in reset["detail"]
    assert_problem(api.post(f"/v1/sessions/{uuid.uuid4()}/halt", {"reason": "x"}), 404)
    assert_problem(api.post(f"/v1/orders/{uuid.uuid4()}/cancel", {"reason": "x"}), 404)
    zero = {"mode": "paper", "starting_capital": "0"}
    assert_problem(api.post("/v1/sessions", zero), 422, "invalid-command")
    for bad in (
        {"mode": "paper", "starting_capital": 100000},  # a JSON number is not money
        {"mode": "paper", "starting_capital": "1e5"},
        {"mode": "moon", "starting_capital": "1"},
        {"mode": "paper", "starting_capital": "1", "extra": True},
    ):
        assert_problem(api.post("/v1/sessions", bad), 422, "validation-error")
    for reason in ("", "   ", "x" * 401):
        assert_problem(api.post("/v1/kill-switch", {"reason": reason}), 422, "validation-error")
    # Without an HMAC key nothing can be approved: 503, and nothing changed.
    api.trading.keys = KeyRing(())
    head = api.head()
    body = assert_problem(
        api.post("/v1/sessions", {"mode": "paper", "starting_capital": "1000"}), 503,
        "approval-unavailable",
    )
    assert "ais keys init" in body["detail"]
    assert api.head() == head


# --- reads ------------------------------------------------------------------------------------
def test_reads_reflect_the_log_with_money_as_strings(api: Api) -> None:
    app = api.trading
    clock: Any = app.clock
    session_id = start_session(app)  # 100000 cash; BTC 50000, ETH 3000
    order_id = place(app, session_id, quantity="0.04", price="50000")
    fill(app, order_id, "0.04", "50000", "2")
    clock.advance(60)
    app.observe_mark("BTC-USDT", Decimal("51000"))
    head = api.project()

    portfolio = api.get("/v1/portfolio")
    body = portfolio.json()
    no_floats(body)
    assert body["position"] == head == int(portfolio.headers["x-ais-position"])
    assert Decimal(body["cash"]) == Decimal("97998")  # 100000 - 2000 - 2 fee
    assert Decimal(body["nav"]) == Decimal("100038")  # + 0.04 x 51000
    assert Decimal(body["high_water_mark"]) == Decimal("100038")
    assert body["drawdown"] == "0" and isinstance(body["daily_pnl"], str)

    exposure = api.get("/v1/exposure").json()
    no_floats(exposure)
    assert exposure["position"] == head
    [btc] = [i for i in exposure["instruments"] if i["instrument"] == "BTC-USDT"]
    assert Decimal(btc["notional"]) == Decimal("2040")
    assert Decimal(exposure["leverage"]) == Decimal("2040") / Decimal("100038")

    positions = api.get("/v1/positions").json()
    no_floats(positions)
    [position] = positions["items"]
    assert (position["instrument"], Decimal(position["quantity"])) == ("BTC-USDT", Decimal("0.04"))

    orders = api.get("/v1/orders").json()
    no_floats(orders)
    [order] = orders["items"]
    assert order["order_id"] == str(order_id) and order["status"] == "FILLED"
    assert order["reduce_only"] is False and Decimal(order["fees"]) == 2
    detail = api.get(f"/v1/orders/{order_id}")
    assert detail.json() == {**order, "position": head}
    assert detail.headers["x-ais-position"] == str(head)

    sessions = api.get("/v1/sessions").json()
    assert [s["session_id"] for s in sessions["items"]] == [str(session_id)]
    assert sessions["items"][0]["starting_capital"] == "100000"

    history = api.get("/v1/portfolio/history").json()
    no_floats(history)
    assert [Decimal(p["nav"]) for p in history["items"]][-1] == Decimal("100038")

    reconciliation = api.get("/v1/reconciliation")  # no exchange snapshot yet
    assert reconciliation.status_code == 200
    assert reconciliation.json()["items"] == [] and reconciliation.json()["next_cursor"] is None


def test_reconciliation_shows_each_snapshot_with_its_items(api: Api) -> None:
    app = api.trading
    start_session(app)  # 100000 USDT, nothing held
    for usdt in ("100000", "1"):  # one that matches, one far off
        app.record_exchange_snapshot(
            "paper", balances={"USDT": {"total": usdt}}, positions=[], open_orders=[]
        )
    head = api.project()
    page = api.get("/v1/reconciliation").json()
    assert page["position"] == head
    no_floats(page)
    first, second = page["items"]
    assert (first["venue"], first["status"]) == ("paper", "MATCHED")
    assert second["status"] == "BREAK" and second["snapshot"] > first["snapshot"]
    [usdt] = [i for i in second["items"] if i["item"] == "USDT"]
    assert (Decimal(usdt["expected"]), Decimal(usdt["observed"])) == (Decimal(100000), Decimal(1))
    assert "venue" not in usdt
    breaks = api.get("/v1/reconciliation?status=BREAK&limit=1").json()
    assert [r["snapshot"] for r in breaks["items"]] == [second["snapshot"]]
    one = api.get("/v1/reconciliation?limit=1").json()
    rest = api.get(f"/v1/reconciliation?cursor={one['next_cursor']}").json()
    assert [r["snapshot"] for r in one["items"] + rest["items"]] == [
        first["snapshot"], second["snapshot"]
    ]


def test_reconciliation_without_its_read_model_is_an_empty_page(sqlite_api: Api) -> None:
    others = [p for p in all_projections() if p.name != "reconciliation"]
    reads = ReadQueries(sqlite_api.models.store, others)
    assert reads.reconciliation(None, 10, 42) == {
        "items": [], "next_cursor": None, "position": 42
    }
    with pytest.raises(ProblemError):
        reads.reconciliation("not-a-cursor", 10, 42)


def test_pages_are_stable_and_filters_apply(api: Api) -> None:
    app = api.trading
    clock: Any = app.clock
    session_id = start_session(app)
    placed = []
    for n in range(7):
        clock.advance(1)
        placed.append(place(app, session_id, quantity=f"0.00{n + 1}", price="49000"))
    for order_id in placed[1:3]:
        app.execute(CancelOrder(order_id=order_id, reason="test"))
    clock.advance(1)
    eth = place(app, session_id, instrument="ETH-USDT", quantity="1", price="3000")
    with pytest.raises(Exception, match="max_order_quantity"):
        place(app, session_id, quantity="3", price="50000")
    api.project()

    def walk(path: str, limit: int) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = f"{'&' if '?' in path else '?'}limit={limit}"
            query += f"&cursor={cursor}" if cursor else ""
            page = api.get(path + query).json()
            assert len(page["items"]) <= limit
            items += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return items

    everything = api.get("/v1/orders?limit=500").json()["items"]
    assert [o["order_id"] for o in everything] == [str(o) for o in [*placed, eth]]
    first = api.get("/v1/orders?limit=3").json()
    assert len(first["items"]) == 3 and first["next_cursor"]
    # A row appended between pages appears once, at the end; nothing repeats or vanishes.
    clock.advance(1)
    late = place(app, session_id, quantity="0.009", price="49000")
    api.project()
    rest = api.get(f"/v1/orders?limit=500&cursor={first['next_cursor']}").json()["items"]
    assert [o["order_id"] for o in first["items"] + rest] == [
        str(o) for o in [*placed, eth, late]
    ]
    assert [o["order_id"] for o in walk("/v1/orders", 2)] == [
        str(o) for o in [*placed, eth, late]
    ]
    canceled = walk("/v1/orders?status=CANCELED", 1)
    assert [o["order_id"] for o in canceled] == [str(o) for o in placed[1:3]]
    assert [o["order_id"] for o in walk("/v1/orders?instrument=ETH-USDT", 5)] == [str(eth)]
    by_session = walk(f"/v1/orders?session_id={session_id}", 4)
    assert len(by_session) == 9

    decisions = walk("/v1/risk/decisions", 4)
    assert decisions == api.get("/v1/risk/decisions?limit=500").json()["items"]
    positions = [d["position"] for d in decisions]
    assert positions == sorted(set(positions))
    [rejected] = walk("/v1/risk/decisions?guard=max_order_quantity", 10)
    assert rejected["decision"] == "REJECTED" and rejected["limit"] == "2"
    assert rejected["observed"] == "3"
    approved = walk("/v1/risk/decisions?decision=APPROVED", 3)
    assert {d["command_type"] for d in approved} == {"StartSession", "PlaceOrder", "CancelOrder"}

    assert walk("/v1/portfolio/history", 1) == api.get("/v1/portfolio/history").json()["items"]
    assert len(walk("/v1/sessions", 1)) == 1

    orders_cursor = first["next_cursor"]
    assert_problem(api.get(f"/v1/risk/decisions?cursor={orders_cursor}"), 400, "invalid-cursor")
    assert_problem(api.get("/v1/orders?cursor=eyJyIjoib3JkZXJzIn0"), 400, "invalid-cursor")


def test_min_position_waits_for_the_projector_then_gives_up(api: Api) -> None:
    start_session(api.trading)
    head = api.project()
    engaged = api.post("/v1/kill-switch", {"reason": "drill"})
    assert engaged.status_code == 200, engaged.text
    wrote = engaged.json()["position"]
    assert wrote > head
    # Not projected yet: a plain read answers at once, with the position it reflects.
    stale = api.get("/v1/risk/decisions?decision=KILL_SWITCH_ENGAGED")
    assert stale.json()["items"] == [] and stale.json()["position"] == head

    catch_up = threading.Timer(0.3, api.project)
    started = time.monotonic()
    catch_up.start()
    try:
        waited = api.get(f"/v1/risk/decisions?decision=KILL_SWITCH_ENGAGED&min_position={wrote}")
    finally:
        catch_up.join()
    elapsed = time.monotonic() - started
    assert waited.status_code == 200, waited.text
    assert waited.json()["position"] >= wrote
    assert int(waited.headers["x-ais-position"]) == waited.json()["position"]
    assert [d["actor"] for d in waited.json()["items"]] == ["ops-alice"]
    assert 0.25 <= elapsed < 3

    # Beyond the end of the log: nothing to wait for, 409 at once.
    beyond = api.head() + 100
    body = assert_problem(api.get(f"/v1/portfolio?min_position={beyond}"), 409,
                          "position-not-in-log")
    assert (body["min_position"], body["head"]) == (beyond, api.head())
    assert_problem(api.get(f"/v1/events?min_position={api.head() + 1}", "auditor"), 409)
    assert api.get(f"/v1/events?min_position={api.head()}", "auditor").status_code == 200

    # In the log but not projected within the bound: 503, and where the read model is.
    api.services.max_wait_seconds = 0.2
    projected = api.project()
    api.post("/v1/kill-switch/reset", {"reason": "drill over"})
    started = time.monotonic()
    behind = api.get(f"/v1/portfolio?min_position={api.head()}")
    assert 0.15 <= time.monotonic() - started < 2
    body = assert_problem(behind, 503, "read-model-behind")
    assert behind.headers["retry-after"] == "1"
    assert (body["min_position"], body["position"]) == (api.head(), projected)


# --- control plane ----------------------------------------------------------------------------
def test_control_plane_goes_through_the_desk_and_records_the_caller(api: Api) -> None:
    started = api.post("/v1/sessions", {"mode": "paper", "starting_capital": "250000.50"})
    assert started.status_code == 201, started.text
    session = started.json()
    assert session["status"] == "ACTIVE" and session["requested_by"] == "ops-alice"
    assert started.headers["x-ais-position"] == str(session["position"])
    session_id = session["session_id"]

    second = api.post("/v1/sessions", {"mode": "live", "starting_capital": "1"})
    refused = assert_problem(second, 409, "risk-rejected")
    assert refused["guard"] == "session_active" and refused["observed"] == session_id
    assert refused["limit"] == "one active session"

    api.trading.observe_mark("BTC-USDT", Decimal("50000"))
    order_id = place(api.trading, uuid.UUID(session_id), quantity="0.01", price="49000")
    canceled = api.post(f"/v1/orders/{order_id}/cancel", {"reason": "fat finger"})
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "CANCELED"
    assert_problem(api.post(f"/v1/orders/{order_id}/cancel", {"reason": "again"}), 409)

    halted = api.post(f"/v1/sessions/{session_id}/halt", {"reason": "maintenance"})
    assert halted.status_code == 200 and halted.json()["status"] == "HALTED"

    engaged = api.post("/v1/kill-switch", {"reason": "drill"}).json()
    assert (engaged["kill_state"], engaged["changed"]) == ("HALTED", True)
    assert api.post("/v1/kill-switch", {"reason": "again"}).json()["changed"] is False
    reset = api.post("/v1/kill-switch/reset", {"reason": "drill over"})
    assert reset.json()["kill_state"] == "ACTIVE"
    api.project()

    at = reset.json()["position"]
    decisions = api.get(f"/v1/risk/decisions?limit=500&min_position={at}").json()["items"]
    summary = [(d["decision"], d["command_type"], d["target_id"], d["actor"]) for d in decisions]
    assert ("APPROVED", "StartSession", session_id, None) in summary
    assert ("APPROVED", "CancelOrder", str(order_id), None) in summary
    assert ("APPROVED", "HaltSession", session_id, None) in summary
    assert ("KILL_SWITCH_ENGAGED", None, None, "ops-alice") in summary
    assert ("KILL_SWITCH_RESET", None, None, "ops-alice") in summary
    [rejected] = [d for d in decisions if d["decision"] == "REJECTED"]
    assert (rejected["guard"], rejected["command_type"]) == ("session_active", "StartSession")
    engaged_row = next(d for d in decisions if d["decision"] == "KILL_SWITCH_ENGAGED")
    assert engaged_row["reason"] == "drill"

    order = api.get(f"/v1/orders/{order_id}").json()
    assert order["end_reason"] == "fat finger (requested by ops-alice)"
    [row] = api.get("/v1/sessions").json()["items"]
    assert (row["status"], row["last_reason"]) == ("HALTED", "maintenance (requested by ops-alice)")
    assert row["starting_capital"] == "250000.50" and row["mode"] == "paper"

    # The auditor's log has every change and who asked, and never a token.
    events: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = api.get(f"/v1/events?limit=7{cursor}", "auditor").json()
        no_floats(page)
        events += page["items"]
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert [e["position"] for e in events] == list(range(1, api.head() + 1))
    dumped = json.dumps(events)
    assert "ops-alice" in dumped
    assert not any(token in dumped for token in api.tokens.values())
    engaged_event = next(e for e in events if e["topic"].endswith("KillSwitchEngaged"))
    assert engaged_event["state"]["by"] == "ops-alice"


def test_only_operators_change_anything(api: Api) -> None:
    session_id = start_session(api.trading)
    order_id = place(api.trading, session_id)
    head = api.head()
    for role in ("viewer", "auditor"):
        for path, body in (
            ("/v1/kill-switch", {"reason": "x"}),
            ("/v1/kill-switch/reset", {"reason": "x"}),
            ("/v1/sessions", {"mode": "paper", "starting_capital": "10"}),
            (f"/v1/sessions/{session_id}/halt", {"reason": "x"}),
            (f"/v1/orders/{order_id}/cancel", {"reason": "x"}),
        ):
            assert_problem(api.post(path, body, role), 403, "forbidden")
    assert api.head() == head
    assert api.trading.order(order_id).status == "PENDING_NEW"
