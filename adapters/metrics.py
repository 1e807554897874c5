"""Prometheus metrics (DESIGN.md, "Observability"): names with the `ais_` prefix, base units.

Two sources, one registry per process:

- `ReadModelCollector` computes gauges and counters at scrape time from the read models
  (`rm_portfolio`, `rm_exposure_totals`, `rm_exposure`, `rm_orders`, `rm_risk_decisions`,
  `rm_positions`, `rm_sessions`, `rm_reconciliation`, `rm_tracking`) and the head of the
  event log. Nothing is cached: every process that can read the database (API replicas,
  projectors, the loop) answers the same numbers, and a rebuilt read model is reflected
  at the next scrape. Values are the read models' exact decimal strings turned into
  floats only here, at the edge.
- `PrometheusMetrics` holds what exists nowhere in the log: cycle duration, agent latency,
  circuit-breaker state, and (in a process without the read models) a fills counter. The
  trading loop reports to it through the `application.ports.Metrics` port.

Serve a registry with `metrics_router(registry)` (FastAPI, `GET /metrics`) or
`start_metrics_server(port, registry)` (own thread, for `ais project --follow` and
`ais run`).
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Protocol
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Column as SqlColumn
from sqlalchemy import Connection, Integer, MetaData, Table, Text, and_, func, inspect, select
from sqlalchemy.exc import SQLAlchemyError

from adapters.read_store import SqlReadStore
from application.ports import Alert, AlertSink
from domain.limits import RiskLimits
from projections.exposure import BY_INSTRUMENT, TOTALS
from projections.orders import ORDERS
from projections.portfolio import SUMMARY
from projections.positions import POSITIONS
from projections.registry import all_projections
from projections.risk_decisions import DECISIONS
from projections.sessions import SESSIONS
from projections.spec import Projection, TableSpec

if TYPE_CHECKING:
    from fastapi import APIRouter

log = logging.getLogger("ais.metrics")

# --- the contract: names and HELP texts ------------------------------------------------------
NAV = "ais_nav_quote"
DRAWDOWN = "ais_drawdown_ratio"
EXPOSURE_GROSS = "ais_exposure_gross_ratio"
ORDERS_TOTAL = "ais_orders_total"
RISK_DECISIONS_TOTAL = "ais_risk_decisions_total"
FILLS_TOTAL = "ais_fills_total"
CYCLE_DURATION = "ais_cycle_duration_seconds"
AGENT_LATENCY = "ais_agent_latency_seconds"
PROJECTION_LAG = "ais_projection_lag_events"
RECONCILIATION_STATUS = "ais_reconciliation_status"
KILL_SWITCH = "ais_kill_switch_engaged"
CIRCUIT_BREAKER = "ais_circuit_breaker_open"
EVENT_STORE_UP = "ais_event_store_up"

#: Every metric name DESIGN.md promises, as it appears in the exposition format.
DESIGN_METRICS = (
    NAV,
    DRAWDOWN,
    EXPOSURE_GROSS,
    ORDERS_TOTAL,
    RISK_DECISIONS_TOTAL,
    FILLS_TOTAL,
    CYCLE_DURATION,
    AGENT_LATENCY,
    PROJECTION_LAG,
    RECONCILIATION_STATUS,
    KILL_SWITCH,
)

HELP = {
    NAV: "Net asset value (cash + sum of quantity x mark) in the quote currency, "
    "from the portfolio read model at its last mark.",
    DRAWDOWN: "Drawdown from the high-water mark, 1 - NAV/HWM, as a ratio (0.05 = 5 %).",
    EXPOSURE_GROSS: "Gross exposure (long + short notional) over NAV, as a ratio "
    "(the exposure read model's leverage).",
    ORDERS_TOTAL: "Orders placed, by their current status (PENDING_NEW, SUBMITTED, OPEN, "
    "PARTIALLY_FILLED, FILLED, CANCELED, REJECTED, EXPIRED); the sum over statuses only grows.",
    RISK_DECISIONS_TOTAL: "Risk desk decisions recorded in the log, by decision (APPROVED, "
    "REJECTED, KILL_SWITCH_ENGAGED, ...) and guard (the rejecting guard; empty otherwise).",
    FILLS_TOTAL: "Fills applied to positions (exchange trades), counted once per trade id.",
    CYCLE_DURATION: "Wall-clock duration of one trading-loop step (marks, fills, orders and, "
    "on decision steps, agents to orders), in seconds.",
    AGENT_LATENCY: "Wall-clock time one strategy agent took to produce its signals for one "
    "decision, in seconds.",
    PROJECTION_LAG: "Events in the log not yet applied to the read model: head of the log "
    "minus the projection's tracking position.",
    RECONCILIATION_STATUS: "Worst reconciliation status over the latest snapshot of every "
    "venue: 0 MATCHED (or no snapshot yet), 1 DRIFT, 2 BREAK.",
    KILL_SWITCH: "1 while the risk desk's kill switch is engaged (HALTED), else 0.",
    CIRCUIT_BREAKER: "1 while the circuit breaker of the venue's gateway is open "
    "(orders refused until a probe succeeds), else 0.",
}
# Beyond the contract: what the dashboard and the alert rules need as well.
EXTRA_HELP = {
    EVENT_STORE_UP: "0 while the trading loop cannot reach the event store (it places no "
    "orders then), else 1.",
    "ais_high_water_mark_quote": "High-water mark of NAV in the quote currency.",
    "ais_max_drawdown_ratio": "Largest drawdown from the high-water mark seen so far, ratio.",
    "ais_daily_pnl_quote": "Profit and loss since the first NAV of the current UTC day, "
    "in the quote currency.",
    "ais_exposure_net_ratio": "Net exposure (long - short notional) over NAV, ratio.",
    "ais_exposure_weight_ratio": "Notional of one instrument's position over NAV, ratio "
    "(negative when short).",
    "ais_orders_placed_total": "Orders placed (every status), a counter for rates.",
    "ais_last_mark_timestamp_seconds": "Time of the last mark applied to the portfolio, "
    "Unix seconds (event time).",
    "ais_last_fill_timestamp_seconds": "Time of the last fill applied to a position, "
    "Unix seconds (event time).",
    "ais_sessions_active": "Trading sessions in status ACTIVE.",
    "ais_projection_position": "Log position the read model reflects (tracking position).",
    "ais_event_log_head": "Position of the last event in the log.",
    "ais_reconciliation_venue_status": "Status of the latest reconciliation of the venue: "
    "0 MATCHED, 1 DRIFT, 2 BREAK.",
    "ais_reconciliation_last_timestamp_seconds": "When the venue's latest reconciled "
    "snapshot was taken, Unix seconds.",
    "ais_risk_limit_ratio": "Configured risk limits that are ratios of NAV "
    "(max_drawdown, daily_loss, max_gross_leverage, max_net_exposure, max_position_weight).",
    "ais_metrics_collect_errors_total": "Scrapes whose read-model queries failed (the "
    "read-model metrics of that scrape are missing).",
}

ORDER_STATUSES = (
    "PENDING_NEW",
    "SUBMITTED",
    "OPEN",
    "PARTIALLY_FILLED",
    "FILLED",
    "CANCELED",
    "REJECTED",
    "EXPIRED",
)
RECONCILIATION_CODES = {"MATCHED": 0, "DRIFT": 1, "BREAK": 2}
_KILL_DECISIONS = ("KILL_SWITCH_ENGAGED", "KILL_SWITCH_RESET")
_LIMIT_RATIOS = (
    "max_drawdown",
    "daily_loss",
    "max_gross_leverage",
    "max_net_exposure",
    "max_position_weight",
)
CYCLE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
AGENT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


def reconciliation_spec() -> TableSpec | None:
    """The reconciliation projection's results table, if that projection exists."""
    try:
        module = importlib.import_module("projections.reconciliation")
    except ImportError:
        return None
    spec = getattr(module, "RESULTS", None)
    return spec if isinstance(spec, TableSpec) else None


def _number(text: Any) -> float | None:
    if text is None or text == "":
        return None
    try:
        return float(Decimal(str(text)))
    except (InvalidOperation, ValueError):
        return None


def _timestamp(text: Any) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        return None


class _Add(Protocol):
    def __call__(self, name: str, value: float | None, labels: Sequence[str] = ()) -> None: ...


class _Families:
    """The metric families of one scrape, declared up front so HELP is always there."""

    def __init__(self) -> None:
        self.by_name: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}

    def gauge(self, name: str, labels: Sequence[str] = ()) -> GaugeMetricFamily:
        family = GaugeMetricFamily(name, HELP.get(name) or EXTRA_HELP[name], labels=labels)
        self.by_name[name] = family
        return family

    def counter(self, name: str, labels: Sequence[str] = ()) -> CounterMetricFamily:
        text = HELP.get(name) or EXTRA_HELP[name]
        family = CounterMetricFamily(name.removesuffix("_total"), text, labels=labels)
        self.by_name[name] = family
        return family


class ReadModelCollector(Collector):
    """Read-model figures computed on every scrape, in one read transaction.

    `head` gives the log's last position (for the lag). `limits` (optional) are exported
    as `ais_risk_limit_ratio{limit}` so alert rules can compare against the configured
    limit instead of a copy of it. With `fills=False` the fills counter is left to a
    `PrometheusMetrics` in the same registry.
    """

    def __init__(
        self,
        store: SqlReadStore,
        head: Callable[[], int],
        projections: Sequence[Projection] | None = None,
        *,
        limits: RiskLimits | None = None,
        fills: bool = True,
    ) -> None:
        self.engine = store.engine
        self.schema = store.schema
        self.prefix = store.prefix
        self.head = head
        self.projection_names = [p.name for p in (projections or all_projections())]
        self.limits = limits
        self.fills = fills
        self.errors = 0
        self._lock = threading.Lock()
        self._metadata = MetaData(schema=store.schema)
        self._tables: dict[str, Table] = {}
        self._tracking = Table(
            f"{self.prefix}tracking",
            self._metadata,
            SqlColumn("projection", Text, primary_key=True),
            SqlColumn("notification_id", Integer),
        )
        self._reconciliation = reconciliation_spec()

    def _table(self, spec: TableSpec) -> Table:
        with self._lock:
            if spec.name not in self._tables:
                self._tables[spec.name] = Table(
                    f"{self.prefix}{spec.name}",
                    self._metadata,
                    *(
                        SqlColumn(
                            c,
                            Integer if c in spec.integer_columns else Text,
                            primary_key=c in spec.key,
                        )
                        for c in spec.columns
                    ),
                )
            return self._tables[spec.name]

    # --- the Collector protocol ---------------------------------------------------------------
    def describe(self) -> Iterable[Metric]:
        """The families without samples (registering must not query the database)."""
        return self._declare().by_name.values()

    def collect(self) -> Iterable[Metric]:
        families = self._declare()
        try:
            head = self.head()
            with self.engine.connect() as conn:
                existing = set(inspect(conn).get_table_names(schema=self.schema))
                self._fill(families, conn, existing, head)
                conn.rollback()
        except SQLAlchemyError as exc:  # database down, a table dropped mid-rebuild ...
            self.errors += 1
            log.warning("metrics: reading the read models failed: %s", exc)
            families = self._declare()  # no half-filled families
        except Exception as exc:  # the event store may raise its own errors
            self.errors += 1
            log.warning("metrics: reading the log head failed: %s", exc)
            families = self._declare()
        errors = families.by_name["ais_metrics_collect_errors_total"]
        errors.add_metric([], self.errors)
        self._static(families)
        return families.by_name.values()

    # --- one scrape -------------------------------------------------------------------------
    def _declare(self) -> _Families:
        f = _Families()
        for name in (NAV, DRAWDOWN, EXPOSURE_GROSS, "ais_high_water_mark_quote"):
            f.gauge(name)
        for name in ("ais_max_drawdown_ratio", "ais_daily_pnl_quote", "ais_exposure_net_ratio"):
            f.gauge(name)
        f.gauge("ais_exposure_weight_ratio", ["instrument"])
        f.gauge(ORDERS_TOTAL, ["status"])
        f.counter("ais_orders_placed_total")
        f.counter(RISK_DECISIONS_TOTAL, ["decision", "guard"])
        if self.fills:
            f.counter(FILLS_TOTAL)
        f.gauge(KILL_SWITCH)
        f.gauge(RECONCILIATION_STATUS)
        f.gauge("ais_reconciliation_venue_status", ["venue"])
        f.gauge("ais_reconciliation_last_timestamp_seconds", ["venue"])
        f.gauge(PROJECTION_LAG, ["projection"])
        f.gauge("ais_projection_position", ["projection"])
        f.gauge("ais_event_log_head")
        f.gauge("ais_last_mark_timestamp_seconds")
        f.gauge("ais_last_fill_timestamp_seconds")
        f.gauge("ais_sessions_active")
        f.gauge("ais_risk_limit_ratio", ["limit"])
        f.counter("ais_metrics_collect_errors_total")
        return f

    def _static(self, f: _Families) -> None:
        family = f.by_name["ais_risk_limit_ratio"]
        if self.limits is not None:
            for name in _LIMIT_RATIOS:
                family.add_metric([name], float(getattr(self.limits, name)))

    def _fill(self, f: _Families, conn: Connection, existing: set[str], head: int) -> None:
        def present(spec: TableSpec) -> Table | None:
            return self._table(spec) if f"{self.prefix}{spec.name}" in existing else None

        def add(name: str, value: float | None, labels: Sequence[str] = ()) -> None:
            if value is not None:
                f.by_name[name].add_metric(list(labels), value)

        self._portfolio(conn, present(SUMMARY), add)
        self._exposure(conn, present(TOTALS), present(BY_INSTRUMENT), add)
        self._orders(conn, present(ORDERS), add)
        self._decisions(conn, present(DECISIONS), add)
        self._positions(conn, present(POSITIONS), add)
        sessions = present(SESSIONS)
        if sessions is not None:
            active = conn.execute(
                select(func.count()).select_from(sessions).where(sessions.c.status == "ACTIVE")
            ).scalar()
            add("ais_sessions_active", float(active or 0))
        spec = self._reconciliation
        self._reconciled(conn, present(spec) if spec is not None else None, add)
        self._lag(conn, f"{self.prefix}tracking" in existing, head, add)

    @staticmethod
    def _portfolio(conn: Connection, t: Table | None, add: _Add) -> None:
        row = conn.execute(select(t)).mappings().first() if t is not None else None
        if row is None:
            return
        add(NAV, _number(row["nav"]))
        add(DRAWDOWN, _number(row["drawdown"]))
        add("ais_high_water_mark_quote", _number(row["high_water_mark"]))
        add("ais_max_drawdown_ratio", _number(row["max_drawdown"]))
        add("ais_daily_pnl_quote", _number(row["daily_pnl"]))
        add("ais_last_mark_timestamp_seconds", _timestamp(row["as_of"]))

    @staticmethod
    def _exposure(conn: Connection, totals: Table | None, each: Table | None, add: _Add) -> None:
        row = conn.execute(select(totals)).mappings().first() if totals is not None else None
        if row is not None:
            add(EXPOSURE_GROSS, _number(row["leverage"]))
            nav, net = _number(row["nav"]), _number(row["net"])
            add("ais_exposure_net_ratio", net / nav if nav and net is not None else None)
        if each is not None:
            for r in conn.execute(select(each.c.instrument, each.c.weight)):
                add("ais_exposure_weight_ratio", _number(r.weight), [r.instrument])

    @staticmethod
    def _orders(conn: Connection, t: Table | None, add: _Add) -> None:
        counts = dict.fromkeys(ORDER_STATUSES, 0)
        if t is not None:
            for status, count in conn.execute(
                select(t.c.status, func.count()).group_by(t.c.status)
            ):
                counts[str(status)] = int(count)
        for status, count in counts.items():
            add(ORDERS_TOTAL, float(count), [status])
        add("ais_orders_placed_total", float(sum(counts.values())))

    @staticmethod
    def _decisions(conn: Connection, t: Table | None, add: _Add) -> None:
        engaged = 0.0
        if t is not None:
            guard = func.coalesce(t.c.guard, "")
            for decision, which, count in conn.execute(
                select(t.c.decision, guard, func.count()).group_by(t.c.decision, guard)
            ):
                add(RISK_DECISIONS_TOTAL, float(count), [str(decision), str(which)])
            last = conn.execute(
                select(t.c.decision)
                .where(t.c.decision.in_(_KILL_DECISIONS))
                .order_by(t.c.position.desc())
                .limit(1)
            ).scalar()
            engaged = 1.0 if last == "KILL_SWITCH_ENGAGED" else 0.0
        add(KILL_SWITCH, engaged)

    def _positions(self, conn: Connection, t: Table | None, add: _Add) -> None:
        trades, last = (0, None)
        if t is not None:
            found = conn.execute(
                select(
                    func.coalesce(func.sum(t.c.trades), 0),
                    func.max(t.c.updated_at).filter(t.c.trades > 0),
                )
            ).first()
            if found is not None:
                trades, last = int(found[0] or 0), found[1]
        if self.fills:
            add(FILLS_TOTAL, float(trades))
        add("ais_last_fill_timestamp_seconds", _timestamp(last))

    @staticmethod
    def _reconciled(conn: Connection, t: Table | None, add: _Add) -> None:
        worst = 0
        if t is not None:
            latest = (
                select(t.c.venue, func.max(t.c.snapshot).label("snapshot"))
                .group_by(t.c.venue)
                .subquery()
            )
            query = select(t.c.venue, t.c.status, t.c.taken_at).join(
                latest, and_(t.c.venue == latest.c.venue, t.c.snapshot == latest.c.snapshot)
            )
            for venue, status, taken_at in conn.execute(query):
                code = RECONCILIATION_CODES.get(str(status), 2)  # unknown: assume the worst
                worst = max(worst, code)
                add("ais_reconciliation_venue_status", float(code), [str(venue)])
                add("ais_reconciliation_last_timestamp_seconds", _timestamp(taken_at), [venue])
        add(RECONCILIATION_STATUS, float(worst))

    def _lag(self, conn: Connection, tracked: bool, head: int, add: _Add) -> None:
        add("ais_event_log_head", float(head))
        positions: dict[str, int] = {}
        if tracked:
            t = self._tracking
            positions = {
                str(name): int(at or 0)
                for name, at in conn.execute(select(t.c.projection, t.c.notification_id))
            }
        for name in self.projection_names:
            at = positions.get(name, 0)
            add("ais_projection_position", float(at), [name])
            add(PROJECTION_LAG, float(max(0, head - at)), [name])


class PrometheusMetrics:
    """The `Metrics` port on prometheus-client instruments (thread-safe)."""

    def __init__(self, registry: CollectorRegistry, *, fills: bool = True) -> None:
        self.cycle = Histogram(
            CYCLE_DURATION, HELP[CYCLE_DURATION], registry=registry, buckets=CYCLE_BUCKETS
        )
        self.agent = Histogram(
            AGENT_LATENCY,
            HELP[AGENT_LATENCY],
            ["agent"],
            registry=registry,
            buckets=AGENT_BUCKETS,
        )
        self.circuit = Gauge(CIRCUIT_BREAKER, HELP[CIRCUIT_BREAKER], ["venue"], registry=registry)
        self.store_up = Gauge(EVENT_STORE_UP, EXTRA_HELP[EVENT_STORE_UP], registry=registry)
        self.store_up.set(1)
        self.fills = Counter(FILLS_TOTAL, HELP[FILLS_TOTAL], registry=registry) if fills else None

    def observe_cycle(self, seconds: float) -> None:
        self.cycle.observe(seconds)

    def observe_agent(self, agent: str, seconds: float) -> None:
        self.agent.labels(agent=agent).observe(seconds)

    def count_fills(self, count: int = 1) -> None:
        if self.fills is not None and count > 0:
            self.fills.inc(count)

    def set_circuit_open(self, venue: str, is_open: bool) -> None:
        self.circuit.labels(venue=venue).set(1 if is_open else 0)

    def set_event_store_up(self, up: bool) -> None:
        self.store_up.set(1 if up else 0)

    def venue_known(self, venue: str) -> None:
        """Export the venue's breaker as closed (0) before it ever changes."""
        self.circuit.labels(venue=venue)


def ais_registry(
    collector: ReadModelCollector | None = None, *, process: bool = True
) -> tuple[CollectorRegistry, PrometheusMetrics]:
    """A registry with every DESIGN.md metric: read-model figures, loop instruments.

    With a collector, `ais_fills_total` is counted from the log (positions read model)
    and `PrometheusMetrics.count_fills` does nothing; without one, the loop counts them.
    """
    registry = CollectorRegistry()
    if collector is not None:
        registry.register(collector)
    metrics = PrometheusMetrics(registry, fills=collector is None or not collector.fills)
    if process:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
    return registry, metrics


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


def metrics_router(registry: CollectorRegistry) -> APIRouter:
    """`GET /metrics` in the Prometheus text format (computed in the thread pool)."""
    from fastapi import APIRouter
    from fastapi.responses import Response

    router = APIRouter(tags=["health"])

    @router.get(
        "/metrics",
        response_class=Response,
        response_model=None,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    def metrics() -> Response:
        """Prometheus metrics (open, no token): read models, lag, the process."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_PLAIN_0_0_4)

    return router


@dataclass
class MetricsServer:
    """A running `/metrics` endpoint on its own port (daemon thread)."""

    host: str
    port: int
    server: WSGIServer
    thread: threading.Thread

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def start_metrics_server(
    port: int, registry: CollectorRegistry, host: str = "127.0.0.1"
) -> MetricsServer:
    """Serve `registry` at http://host:port/metrics; port 0 picks a free port."""
    server, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsServer(host, int(server.server_port), server, thread)


class CircuitAlerts:
    """An AlertSink in front of another: keeps `ais_circuit_breaker_open{venue}` in step
    with the gateway's ExchangeCircuitOpen / ExchangeCircuitClosed alerts, then forwards."""

    def __init__(self, metrics: PrometheusMetrics, forward: AlertSink | None = None) -> None:
        self.metrics = metrics
        self.forward = forward

    def send(self, alert: Alert) -> None:
        venue = alert.labels.get("venue")
        if venue and alert.name == "ExchangeCircuitOpen":
            self.metrics.set_circuit_open(venue, True)
        elif venue and alert.name == "ExchangeCircuitClosed":
            self.metrics.set_circuit_open(venue, False)
        if self.forward is not None:
            self.forward.send(alert)


def samples(text: str) -> Iterator[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample in an exposition text (tests, tooling)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            yield sample.name, dict(sample.labels), sample.value
