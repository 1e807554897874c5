"""Observability: `/metrics` of a running projector process, the loop's instruments, the
direct alert notifier, and the deploy files (Prometheus rules, Alertmanager, Grafana,
docker-compose) checked with the real tools when they are installed.

The scrape test starts `python -m interfaces.cli project --follow --metrics-port 0` as an
OS process on a real store (SQLite, and PostgreSQL), parses what it serves with
prometheus-client's own parser, and compares the figures with the read models.
`promtool`, `amtool` and `docker-compose` tests skip when the binary is missing, unless
CI=true or AIS_REQUIRE_TOOLS=1 (`.ci/run` installs them), where they fail instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
import yaml  # type: ignore[import-untyped]
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from prometheus_client.parser import text_string_to_metric_families

from adapters.alert_notifier import (
    AlertSettings,
    LogAlertWatcher,
    WebhookAlerts,
    alert_key,
    webhook_from_settings,
)
from adapters.alerts import MemoryAlerts
from adapters.clock import SimulatedClock
from adapters.metrics import (
    DESIGN_METRICS,
    EXTRA_HELP,
    HELP,
    CircuitAlerts,
    ReadModelCollector,
    ais_registry,
    metrics_router,
    start_metrics_server,
)
from application.errors import RiskRejected
from application.ports import Alert, Metrics, NoMetrics
from application.trading import TradingApp
from domain.commands import AcknowledgeOrder, CancelOrder, PlaceOrder, SubmitOrder
from domain.values import OrderType, Side
from tests.conftest import SECRET, START, AppFactory, ReadModels, start_session

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
BTC, ETH = "BTC-USDT", "ETH-USDT"


# --- a small real history ---------------------------------------------------------------------
@dataclass
class History:
    app: TradingApp
    clock: SimulatedClock
    session_id: UUID = field(init=False)
    trades: int = 0

    def __post_init__(self) -> None:
        self.session_id = start_session(self.app)

    def order(self, instrument: str, quantity: str, price: str) -> UUID:
        self.clock.advance(11)  # outside the duplicate window
        order_id = self.app.ids()
        self.app.execute(
            PlaceOrder(
                order_id=order_id,
                session_id=self.session_id,
                instrument=instrument,
                side=Side.BUY,
                order_type=OrderType.LIMIT,
                quantity=Decimal(quantity),
                limit_price=Decimal(price),
            )
        )
        client = f"c{order_id.hex[:8]}"
        self.app.execute(SubmitOrder(order_id=order_id, client_order_id=client))
        self.app.execute(AcknowledgeOrder(order_id=order_id, exchange_order_id=f"x{client}"))
        return order_id

    def fill(self, order_id: UUID, quantity: str, price: str) -> None:
        self.trades += 1
        q, p = Decimal(quantity), Decimal(price)
        assert self.app.record_fill(
            order_id,
            trade_id=f"t{self.trades}",
            quantity=q,
            price=p,
            fee=(q * p / 1000).quantize(Decimal("0.01")),
            filled_at=self.clock(),
        )

    def first_part(self) -> None:
        """Two orders (one filled, one partly filled then canceled), a guard rejection,
        a snapshot that matches."""
        btc = self.order(BTC, "0.1", "50000")
        self.fill(btc, "0.1", "50000")
        eth = self.order(ETH, "1", "3000")
        self.fill(eth, "0.5", "3000")
        self.app.execute(CancelOrder(order_id=eth, reason="rest not wanted"))
        self.clock.advance(11)
        with pytest.raises(RiskRejected, match="max_order_quantity"):
            self.app.execute(
                PlaceOrder(
                    order_id=self.app.ids(),
                    session_id=self.session_id,
                    instrument=BTC,
                    side=Side.BUY,
                    order_type=OrderType.LIMIT,
                    quantity=Decimal(100),
                    limit_price=Decimal(50000),
                )
            )
        self.snapshot(matching=True)

    def second_part(self) -> None:
        """The market falls, the venue disagrees with us (BREAK), the kill switch engages."""
        self.clock.advance(30)
        self.app.observe_mark(BTC, Decimal("45000"))
        self.app.observe_mark(ETH, Decimal("2900"))
        self.snapshot(matching=False)
        self.app.engage_kill_switch(reason="observability drill", by="tester")

    def snapshot(self, *, matching: bool) -> None:
        desk = self.app.desk()
        held = {i.split("-")[0]: q for i, q in desk.positions.items()}
        balances = {"USDT": desk.cash if matching else Decimal(1), **held}
        self.app.record_exchange_snapshot(
            "paper",
            balances={a: {"total": str(v)} for a, v in balances.items()},
            positions=[],
            open_orders=[],
        )


# --- a local webhook receiver -----------------------------------------------------------------
class Receiver:
    """An HTTP server on 127.0.0.1 that records JSON bodies; answers from `plan` first."""

    def __init__(self, plan: list[int] | None = None) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.plan = list(plan or [])
        self.calls = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                receiver.calls += 1
                status = receiver.plan.pop(0) if receiver.plan else 200
                if status == 200:
                    receiver.bodies.append(body)
                    receiver.headers.append(dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hooks/s3cr3t-path"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


# --- parsing helpers --------------------------------------------------------------------------
def parse(text: str) -> dict[str, Any]:
    """Families by their name and by every sample name (counters lose `_total`)."""
    families: dict[str, Any] = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = family
        if family.type == "counter":
            families[f"{family.name}_total"] = family
        for sample in family.samples:
            families.setdefault(sample.name, family)
    return families


def value(families: dict[str, Any], name: str, **labels: str) -> float:
    found = [
        s.value
        for s in families[name].samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, f"{name}{labels}: {found}"
    return float(found[0])


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path:
        return path
    if os.environ.get("CI") == "true" or os.environ.get("AIS_REQUIRE_TOOLS") == "1":
        pytest.fail(f"{name} is required in CI but not installed")
    pytest.skip(f"{name} not installed")


# --- the projector process ----------------------------------------------------------------------
class ProjectorProcess:
    def __init__(self, store_url: str | None, home: Path, webhook: str, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIS_")}
        env.update(
            AIS_HOME=str(home),
            AIS_RISK_HMAC_KEYS=f"k1:{SECRET}",
            AIS_ALERT_WEBHOOK_URL=webhook,
            COLUMNS="200",
        )
        if store_url:
            env["AIS_DATABASE_URL"] = store_url
        self.log = log
        self.handle = log.open("w")
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "interfaces.cli", "project", "--follow"),
                *("--batch-size", "7", "--metrics-port", "0"),
            ],
            cwd=ROOT,
            env=env,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
        )
        self.url = self._announced()

    def _announced(self) -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = re.search(r"metrics on (http://\S+/metrics)", self.log.read_text())
            if found:
                return found.group(1)
            if self.proc.poll() is not None:
                pytest.fail(f"projector exited early:\n{self.log.read_text()}")
            time.sleep(0.05)
        pytest.fail(f"projector never announced its metrics port:\n{self.log.read_text()}")

    def scrape(self) -> str:
        answer = httpx.get(self.url, timeout=10)
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain")
        return answer.text

    def caught_up(self, head: int, timeout: float = 30) -> tuple[str, dict[str, Any]]:
        """Scrape until every projection has reached `head` (lag 0)."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.scrape()
            families = parse(text)
            lags = {
                s.labels["projection"]: s.value
                for s in families["ais_projection_lag_events"].samples
            }
            at = value(families, "ais_event_log_head")
            if at >= head and lags and not any(lags.values()):
                return text, families
            if time.monotonic() > deadline:
                pytest.fail(f"not caught up with {head}: head {at}, lag {lags}")
            time.sleep(0.1)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        finally:
            self.handle.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.handle.close()


def rows(read_models: ReadModels, table: str) -> list[dict[str, Any]]:
    return read_models.rows(table)


def assert_matches_read_models(families: dict[str, Any], read_models: ReadModels) -> None:
    [portfolio] = rows(read_models, "portfolio")
    [totals] = rows(read_models, "exposure_totals")
    assert value(families, "ais_nav_quote") == float(Decimal(portfolio["nav"]))
    assert value(families, "ais_drawdown_ratio") == float(Decimal(portfolio["drawdown"]))
    assert value(families, "ais_high_water_mark_quote") == float(
        Decimal(portfolio["high_water_mark"])
    )
    assert value(families, "ais_exposure_gross_ratio") == float(Decimal(totals["leverage"]))
    for row in rows(read_models, "exposure"):
        if row["weight"] is not None:
            assert value(
                families, "ais_exposure_weight_ratio", instrument=row["instrument"]
            ) == float(Decimal(row["weight"]))
    statuses: dict[str, int] = {}
    for row in rows(read_models, "orders"):
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    for status in ("FILLED", "CANCELED", "OPEN", "REJECTED"):
        assert value(families, "ais_orders_total", status=status) == statuses.get(status, 0)
    fills = sum(int(r["trades"]) for r in rows(read_models, "positions"))
    assert value(families, "ais_fills_total") == fills == 2


def test_projector_process_serves_every_metric_and_alerts(
    make_app: AppFactory,
    clock: SimulatedClock,
    store_url: str | None,
    tmp_path: Path,
    read_models: ReadModels,
    receiver: Receiver,
) -> None:
    app = make_app()
    history = History(app, clock)
    history.first_part()
    proc = ProjectorProcess(store_url, tmp_path / "home", receiver.url, tmp_path / "proj.log")
    try:
        text, families = proc.caught_up(read_models.source.head())

        # Every name of the contract is there, documented; nothing undocumented.
        for name in DESIGN_METRICS:
            assert name in families, f"{name} missing"
            assert families[name].documentation.strip(), f"{name} has no HELP"
            assert f"# HELP {name} " in text
        for family in text_string_to_metric_families(text):
            assert family.documentation.strip(), f"{family.name} has no HELP"

        # The figures are the read models' (first part: all calm).
        assert_matches_read_models(families, read_models)
        assert value(families, "ais_kill_switch_engaged") == 0
        assert value(families, "ais_reconciliation_status") == 0
        assert value(families, "ais_reconciliation_venue_status", venue="paper") == 0
        assert (
            value(
                families,
                "ais_risk_decisions_total",
                decision="REJECTED",
                guard="max_order_quantity",
            )
            == 1
        )
        approved = value(families, "ais_risk_decisions_total", decision="APPROVED", guard="")
        assert approved >= 8  # start, 2 x (place, submit, ack), fills, cancel
        assert value(families, "ais_sessions_active") == 1
        assert value(families, "ais_risk_limit_ratio", limit="max_drawdown") == 0.05
        assert value(families, "ais_metrics_collect_errors_total") == 0
        assert value(families, "ais_last_mark_timestamp_seconds") == START.timestamp()

        # Computed at scrape time: the second part shows at the next scrape.
        nav_before = value(families, "ais_nav_quote")
        history.second_part()
        text, families = proc.caught_up(read_models.source.head())
        assert_matches_read_models(families, read_models)
        assert value(families, "ais_nav_quote") < nav_before
        assert value(families, "ais_drawdown_ratio") > 0
        assert value(families, "ais_kill_switch_engaged") == 1
        assert value(families, "ais_reconciliation_status") == 2
        assert value(families, "ais_reconciliation_venue_status", venue="paper") == 2
        assert (
            value(families, "ais_risk_decisions_total", decision="KILL_SWITCH_ENGAGED", guard="")
            == 1
        )

        # The direct notifier told the webhook, without any Prometheus.
        deadline = time.monotonic() + 15
        while len(receiver.bodies) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        names = sorted(b["name"] for b in receiver.bodies)
        assert names == ["KillSwitchEngaged", "ReconciliationBreak"], receiver.bodies
        kill = next(b for b in receiver.bodies if b["name"] == "KillSwitchEngaged")
        assert "observability drill" in kill["summary"] and kill["severity"] == "critical"
        brk = next(b for b in receiver.bodies if b["name"] == "ReconciliationBreak")
        assert brk["labels"]["venue"] == "paper"
        assert brk["key"] == f"ReconciliationBreak:snapshot={brk['labels']['snapshot']},venue=paper"
        assert proc.stop() == 0
    finally:
        proc.kill()
    output = (tmp_path / "proj.log").read_text()
    assert "s3cr3t-path" not in output and SECRET not in output
    assert "Traceback" not in output


def test_metrics_port_needs_follow(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIS_")}
    env["AIS_HOME"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "interfaces.cli", "project", "--metrics-port", "9"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == "error: --metrics-port needs --follow"


# --- in-process: the loop's instruments, the router, OpenMetrics -------------------------------
def test_loop_instruments_router_and_server(
    make_app: AppFactory, clock: SimulatedClock, read_models: ReadModels
) -> None:
    History(make_app(), clock).first_part()
    read_models.projector().run_once()

    loop_registry, loop = ais_registry()  # the loop's own process: it counts fills itself
    port: Metrics = loop
    port.observe_cycle(0.2)
    port.observe_agent("momentum", 0.004)
    port.observe_agent("breakout", 0.03)
    port.count_fills(3)
    NoMetrics().observe_cycle(1.0)  # the default does nothing, and is a Metrics too
    sink = MemoryAlerts()
    alerts = CircuitAlerts(loop, sink)
    alerts.send(Alert("ExchangeCircuitOpen", "critical", "down", {"venue": "binance"}))
    alerts.send(Alert("ExchangeCircuitOpen", "critical", "down", {"venue": "kraken"}))
    alerts.send(Alert("ExchangeCircuitClosed", "info", "up", {"venue": "kraken"}))
    assert len(sink.sent) == 3

    with start_metrics_server(0, loop_registry) as server:
        families = parse(httpx.get(f"http://127.0.0.1:{server.port}/metrics").text)
    assert value(families, "ais_cycle_duration_seconds_count") == 1
    assert value(families, "ais_cycle_duration_seconds_sum") == pytest.approx(0.2)
    assert value(families, "ais_agent_latency_seconds_count", agent="momentum") == 1
    assert value(families, "ais_agent_latency_seconds_bucket", agent="breakout", le="0.05") == 1
    assert value(families, "ais_fills_total") == 3
    assert value(families, "ais_circuit_breaker_open", venue="binance") == 1
    assert value(families, "ais_circuit_breaker_open", venue="kraken") == 0

    # The API's registry: read models, fills from the log (the port's count is ignored).
    collector = ReadModelCollector(read_models.store, read_models.source.head)
    api_registry, api_loop = ais_registry(collector)
    api_loop.count_fills(5)
    web = FastAPI()
    web.include_router(metrics_router(api_registry))
    answer = TestClient(web).get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = parse(answer.text)
    for name in DESIGN_METRICS:
        assert families[name].documentation
    assert_matches_read_models(families, read_models)
    assert "/metrics" in web.openapi()["paths"]

    # The OpenMetrics encoding (what Prometheus asks for first) works too.
    encoded = openmetrics_latest(api_registry)  # type: ignore[no-untyped-call]
    assert encoded.decode().rstrip().endswith("# EOF")


def test_collector_survives_missing_tables_and_a_broken_log(tmp_path: Path) -> None:
    from adapters.read_store import SqlReadStore, engines

    engine, schema = engines(None, tmp_path)
    store = SqlReadStore(engine, schema)

    def broken() -> int:
        raise RuntimeError("event store down")

    try:
        empty = parse(openmetrics_free(ReadModelCollector(store, lambda: 5)))
        assert value(empty, "ais_orders_total", status="FILLED") == 0
        assert value(empty, "ais_kill_switch_engaged") == 0
        assert value(empty, "ais_reconciliation_status") == 0
        assert value(empty, "ais_projection_lag_events", projection="portfolio") == 5
        assert not empty["ais_nav_quote"].samples  # no NAV before the first mark
        failing = ReadModelCollector(store, broken)
        down = parse(openmetrics_free(failing))
        assert value(down, "ais_metrics_collect_errors_total") == 1
        assert not down["ais_projection_lag_events"].samples
        assert down["ais_nav_quote"].documentation
    finally:
        store.close()


def openmetrics_free(collector: ReadModelCollector) -> str:
    registry, _ = ais_registry(collector, process=False)
    from prometheus_client import generate_latest

    return generate_latest(registry).decode()


# --- the direct notifier ------------------------------------------------------------------------
def test_webhook_retries_until_accepted_and_never_logs_the_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver = Receiver(plan=[503, 500, 429])
    slept: list[float] = []
    webhook = WebhookAlerts(
        receiver.url, token="tok-secret", attempts=5, backoff_base=0.01, sleep=slept.append
    )
    try:
        alert = Alert("ReconciliationBreak", "critical", "cash differs", {"venue": "paper"})
        webhook.send(alert)
        assert webhook.flush(10)
        assert receiver.calls == 4 and len(slept) == 3
        [body] = receiver.bodies
        assert body["name"] == "ReconciliationBreak" and body["summary"] == "cash differs"
        assert body["labels"] == {"venue": "paper"} and body["source"] == "ais"
        assert body["key"] == alert_key(alert)
        assert receiver.headers[0]["Authorization"] == "Bearer tok-secret"
        assert webhook.delivered == 1 and webhook.failed == 0
    finally:
        webhook.close()
        receiver.close()
    assert "s3cr3t-path" not in caplog.text and "tok-secret" not in caplog.text
    assert "HTTP 503" in caplog.text


def test_webhook_gives_up_without_raising() -> None:
    refusing = Receiver(plan=[400])
    webhook = WebhookAlerts(refusing.url, attempts=4, background=False, sleep=lambda _: None)
    try:
        webhook.send(Alert("KillSwitchEngaged", "critical", "halted"))  # 400: not retried
        assert refusing.calls == 1 and webhook.failed == 1
    finally:
        refusing.close()
    gone = Receiver()
    url = gone.url
    gone.close()  # nobody listens any more: connection refused, retried, then given up
    webhook = WebhookAlerts(url, attempts=3, background=False, sleep=lambda _: None)
    webhook.send(Alert("KillSwitchEngaged", "critical", "halted"))
    assert webhook.failed == 1 and webhook.delivered == 0
    webhook.close()


def test_webhook_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIS_ALERT_WEBHOOK_URL", raising=False)
    assert webhook_from_settings(AlertSettings()) is None
    monkeypatch.setenv("AIS_ALERT_WEBHOOK_URL", "https://hooks.example/abc")
    monkeypatch.setenv("AIS_ALERT_WEBHOOK_ATTEMPTS", "2")
    configured = AlertSettings()
    assert "abc" not in repr(configured)
    webhook = webhook_from_settings(configured)
    assert webhook is not None and webhook.attempts == 2 and webhook.where == "https://hooks.example"
    webhook.close()
    with pytest.raises(ValueError, match="http"):
        WebhookAlerts("file:///etc/passwd")


def test_log_watcher_sends_each_alert_once_across_processes(
    make_app: AppFactory, clock: SimulatedClock, read_models: ReadModels
) -> None:
    history = History(make_app(), clock)
    history.first_part()
    read_models.projector().run_once()
    first, second = MemoryAlerts(), MemoryAlerts()
    head = read_models.source.head
    watchers = [
        LogAlertWatcher(read_models.store, first, head=head),
        LogAlertWatcher(read_models.store, second, head=head),
    ]
    for watcher in watchers:
        watcher.prepare()
    assert [w.poll() for w in watchers] == [[], []]  # history before the watcher: not sent
    history.second_part()
    assert [w.poll() for w in watchers] == [[], []]  # read models behind: nothing yet
    read_models.projector().run_once()
    sent = watchers[1].poll() + watchers[0].poll()
    assert sorted(a.name for a in sent) == ["KillSwitchEngaged", "ReconciliationBreak"]
    assert len(first.sent) + len(second.sent) == 2  # one process sent them, once
    assert [w.poll() for w in watchers] == [[], []]


# --- deploy files -----------------------------------------------------------------------------
def exported_names() -> set[str]:
    names = set(HELP) | set(EXTRA_HELP)
    for base in ("ais_cycle_duration_seconds", "ais_agent_latency_seconds"):
        names |= {f"{base}_bucket", f"{base}_count", f"{base}_sum"}
    return names


def referenced(expressions: list[str]) -> set[str]:
    return {n for e in expressions for n in re.findall(r"\bais_[a-z_]+\b", e)}


def test_rules_and_dashboard_use_only_exported_metrics() -> None:
    rules = (DEPLOY / "prometheus/rules/ais.yml").read_text()
    dashboard = (DEPLOY / "grafana/dashboards/ais.json").read_text()
    known = exported_names()
    groups = yaml.safe_load(rules)["groups"]
    rule_exprs = [r["expr"] for g in groups for r in g["rules"]]
    panels = json.loads(dashboard)["panels"]
    panel_exprs = [t["expr"] for p in panels for t in p.get("targets", [])]
    assert referenced(rule_exprs) - known == set()
    assert referenced(panel_exprs) - known == set()
    assert {"ais_nav_quote", "ais_projection_lag_events"} <= referenced(panel_exprs)
    titles = " ".join(p["title"].lower() for p in panels)
    for what in ("nav", "drawdown", "exposure", "orders", "fills", "rejections", "agent"):
        assert what in titles
    for what in ("projection lag", "reconciliation"):
        assert what in titles
    alerts = {r["alert"] for g in groups for r in g["rules"]}
    for name in (
        "AisKillSwitchEngaged",
        "AisDrawdownNearLimit",
        "AisReconciliationDrift",
        "AisReconciliationBreak",
        "AisProjectionLag",
        "AisCircuitBreakerOpen",
        "AisCycleOverrun",
        "AisNoMarks",
        "AisNoFills",
    ):
        assert name in alerts


def test_promtool_checks_config_rules_and_rule_tests() -> None:
    promtool = require_tool("promtool")
    for argv in (
        ["check", "config", "deploy/prometheus/prometheus.yml"],
        ["check", "rules", "deploy/prometheus/rules/ais.yml"],
        ["test", "rules", "deploy/prometheus/tests/ais_test.yml"],
    ):
        done = subprocess.run(
            [promtool, *argv], cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_amtool_checks_alertmanager_config() -> None:
    amtool = shutil.which("amtool")  # Debian package prometheus-alertmanager; optional
    if amtool is None:
        pytest.skip("amtool not installed")
    done = subprocess.run(
        [amtool, "check-config", "deploy/alertmanager/alertmanager.yml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_docker_compose_config_is_valid() -> None:
    compose = require_tool("docker-compose")
    done = subprocess.run(
        [compose, "-f", "docker-compose.yml", "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_wires_every_process_with_health_checks() -> None:
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = spec["services"]
    for name in ("postgres", "loop", "projector", "api", "prometheus", "alertmanager", "grafana"):
        assert name in services, name
        assert "healthcheck" in services[name], f"{name} has no health check"
    assert "--metrics-port" in " ".join(services["projector"]["command"])
    for name in ("loop", "projector", "api"):
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "python:3.11-slim" in dockerfile and "USER " in dockerfile
    assert "--no-deps -r requirements.lock" in dockerfile
