"""Direct alert notifications over a webhook: no Prometheus, no Alertmanager in the path.

Two ways alerts reach the webhook:

- `WebhookAlerts` is an `AlertSink` (the application's port, like `adapters.alerts`): the
  alerts the application raises as they happen (ReconciliationBreak, ExchangeCircuitOpen,
  UnknownFill, ...) are POSTed from a background thread with capped, jittered retries, so
  a slow or absent receiver never stalls the trading loop.
- `LogAlertWatcher` follows the read models for what the log itself records: the kill
  switch engaged (by the daily-loss guard, a fill anomaly, reconciliation or an operator,
  in whatever process) and every reconciliation snapshot judged BREAK. Its cursor (a log
  position) is stored in the database and advanced with a compare-and-set before sending,
  so any number of projector processes can run it and each alert is sent by one of them.

The JSON body: `{"source": "ais", "name", "severity", "summary", "labels", "key",
"sent_at"}`. `key` is the same for the same fact from either path (e.g.
`ReconciliationBreak:snapshot=3,venue=binance`), so a receiver can drop duplicates.
Settings: `AIS_ALERT_WEBHOOK_URL` (unset: no webhook), `AIS_ALERT_WEBHOOK_TOKEN` (sent as
`Authorization: Bearer ...`), `AIS_ALERT_WEBHOOK_TIMEOUT_SECONDS`,
`AIS_ALERT_WEBHOOK_ATTEMPTS`. The URL and the token are secrets: never logged.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import httpx
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Column, Integer, MetaData, Table, Text, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from adapters.alerts import LoggingAlerts
from adapters.read_store import WRITE, SqlReadStore
from application.ports import Alert, AlertSink
from projections.reconciliation import RESULTS
from projections.risk_decisions import DECISIONS
from projections.spec import TableSpec

log = logging.getLogger("ais.alerts")
_STOP = object()
_DDL_LOCK = 0x41495341  # PostgreSQL advisory lock key for creating the cursor table


class AlertSettings(BaseSettings):
    """Where direct alerts go. Secrets only from the environment."""

    model_config = SettingsConfigDict(env_prefix="AIS_ALERT_", extra="ignore")

    webhook_url: SecretStr | None = None
    webhook_token: SecretStr | None = None
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    webhook_attempts: int = Field(default=6, ge=1, le=20)


def alert_key(alert: Alert) -> str:
    """The same fact gives the same key, whichever path raised it."""
    labels = ",".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
    return f"{alert.name}:{labels}"


def payload(alert: Alert, sent_at: datetime) -> dict[str, Any]:
    return {
        "source": "ais",
        "name": alert.name,
        "severity": alert.severity,
        "summary": alert.summary,
        "labels": dict(alert.labels),
        "key": alert_key(alert),
        "sent_at": sent_at.isoformat(),
    }


def _where(url: str) -> str:
    """scheme://host[:port] only: the path or query of a webhook URL often is the secret."""
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.hostname}{f':{parsed.port}' if parsed.port else ''}"


class WebhookAlerts:
    """POST each alert as JSON to a webhook, with retries, from a background thread.

    Retried: connection errors, timeouts, 429 and 5xx answers (capped exponential backoff
    with jitter, `Retry-After` honoured up to the cap). Not retried: other 4xx (the
    receiver refuses this alert; retrying would not help). `send` never raises.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 5.0,
        attempts: int = 6,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        max_queue: int = 1000,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        background: bool = True,
    ) -> None:
        if urlparse(url).scheme not in ("http", "https"):
            raise ValueError("alert webhook URL must be http:// or https://")
        if attempts < 1:
            raise ValueError("alert webhook attempts must be at least 1")
        self.url = url
        self.where = _where(url)
        self.attempts = attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        headers = {"User-Agent": "ais-alert-notifier"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = client or httpx.Client(timeout=timeout, headers=headers)
        self._owns_client = client is None
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._now = now
        self.delivered = 0
        self.failed = 0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._work, name="ais-alert-webhook")
            self._thread.daemon = True
            self._thread.start()

    # --- AlertSink ----------------------------------------------------------------------------
    def send(self, alert: Alert) -> None:
        if self._thread is None:
            self.deliver(alert)
            return
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            self.failed += 1
            log.error("alert webhook queue full; dropped %s: %s", alert.name, alert.summary)

    # --- delivery ----------------------------------------------------------------------------
    def deliver(self, alert: Alert) -> bool:
        """POST one alert now, retrying; True when the receiver accepted it (2xx)."""
        body = payload(alert, self._now())
        for attempt in range(self.attempts):
            wait: float | None = None
            try:
                answer = self._client.post(self.url, json=body)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}"
            else:
                if answer.is_success:
                    self.delivered += 1
                    return True
                problem = f"HTTP {answer.status_code}"
                if answer.status_code != 429 and answer.status_code < 500:
                    break  # refused for good
                wait = self._retry_after(answer)
            if attempt + 1 < self.attempts:
                delay = wait if wait is not None else self._backoff(attempt)
                log.warning(
                    "alert webhook %s: %s; retry %d/%d in %.1fs",
                    self.where,
                    problem,
                    attempt + 1,
                    self.attempts - 1,
                    delay,
                )
                self._sleep(delay)
        self.failed += 1
        log.error("alert webhook %s: gave up on %s (%s)", self.where, alert.name, problem)
        return False

    def _backoff(self, attempt: int) -> float:
        ceiling: float = min(self.backoff_cap, self.backoff_base * 2.0**attempt)
        return ceiling * (0.5 + self._rng.random() / 2)

    def _retry_after(self, answer: httpx.Response) -> float | None:
        value = answer.headers.get("Retry-After", "")
        return min(float(value), self.backoff_cap) if value.isdigit() else None

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                self.deliver(item)
            except Exception:  # never let one alert kill the sender
                log.exception("alert webhook: unexpected error")
            finally:
                self._queue.task_done()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued alert was delivered or given up on."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            self.flush(timeout)
            self._queue.put(_STOP)
            self._thread.join(timeout=timeout)
            self._thread = None
        if self._owns_client:
            self._client.close()


def webhook_from_settings(settings: AlertSettings | None = None) -> WebhookAlerts | None:
    """The configured webhook, or None when AIS_ALERT_WEBHOOK_URL is unset."""
    s = settings or AlertSettings()
    if s.webhook_url is None or not s.webhook_url.get_secret_value():
        return None
    return WebhookAlerts(
        s.webhook_url.get_secret_value(),
        token=s.webhook_token.get_secret_value() if s.webhook_token else None,
        timeout=s.webhook_timeout_seconds,
        attempts=s.webhook_attempts,
    )


class FanOutAlerts:
    """Every alert to every sink; one sink failing does not stop the others."""

    def __init__(self, *sinks: AlertSink) -> None:
        self.sinks = list(sinks)

    def send(self, alert: Alert) -> None:
        for sink in self.sinks:
            try:
                sink.send(alert)
            except Exception:
                log.exception("alert sink %s failed", type(sink).__name__)


def _table(metadata: MetaData, prefix: str, spec: TableSpec) -> Table:
    return Table(
        f"{prefix}{spec.name}",
        metadata,
        *(
            Column(c, Integer if c in spec.integer_columns else Text, primary_key=c in spec.key)
            for c in spec.columns
        ),
    )


class LogAlertWatcher:
    """Kill-switch engagements and reconciliation BREAKs from the read models, as alerts.

    Reads only what both read models have reached (the smaller tracking position), so
    nothing is skipped while one of them is behind. The first time, it starts at the head
    of the log (`head`; without it, where the read models are): what happened before the
    watcher ever ran is not announced. The cursor then survives restarts and read-model
    rebuilds (it is a log position).
    """

    def __init__(
        self,
        store: SqlReadStore,
        sink: AlertSink,
        *,
        head: Callable[[], int] | None = None,
        name: str = "webhook",
    ) -> None:
        self.store = store
        self.sink = sink
        self.head = head
        self.name = name
        metadata = MetaData(schema=store.schema)
        self.decisions = _table(metadata, store.prefix, DECISIONS)
        self.results = _table(metadata, store.prefix, RESULTS)
        self.cursor = Table(
            f"{store.prefix}alert_cursor",
            metadata,
            Column("name", Text, primary_key=True),
            Column("position", Integer, nullable=False),
        )
        self._prepared = False

    def _reached(self) -> int:
        return min(self.store.position("risk_decisions"), self.store.position(RESULTS.name))

    def prepare(self) -> None:
        engine = self.store.engine
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
            if engine.dialect.name == "postgresql":  # processes starting together: one DDL
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _DDL_LOCK})
            self.cursor.create(conn, checkfirst=True)
            conn.execute(
                dialect.insert(self.cursor)
                .values(name=self.name, position=self.head() if self.head else self._reached())
                .on_conflict_do_nothing(index_elements=["name"])
            )
        self._prepared = True

    def poll(self) -> list[Alert]:
        """Claim what happened since the cursor and send it; the alerts this call sent."""
        if not self._prepared:
            self.prepare()
        upper = self._reached()
        with self.store.engine.connect() as conn:
            cursor = conn.execute(
                select(self.cursor.c.position).where(self.cursor.c.name == self.name)
            ).scalar_one()
            if upper <= cursor:
                return []
            alerts = sorted(self._found(conn, cursor, upper), key=lambda pa: pa[0])
        with self.store.engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
            claimed = conn.execute(
                update(self.cursor)
                .where(self.cursor.c.name == self.name, self.cursor.c.position == cursor)
                .values(position=upper)
            ).rowcount
        if claimed != 1:
            return []  # another process claimed this range and sends it
        sent = [alert for _, alert in alerts]
        for alert in sent:
            self.sink.send(alert)
        return sent

    def _found(self, conn: Any, after: int, upto: int) -> Iterable[tuple[int, Alert]]:
        d = self.decisions
        for row in conn.execute(
            select(d.c.position, d.c.at, d.c.reason, d.c.actor).where(
                d.c.decision == "KILL_SWITCH_ENGAGED", d.c.position > after, d.c.position <= upto
            )
        ).mappings():
            yield (
                int(row["position"]),
                Alert(
                    "KillSwitchEngaged",
                    "critical",
                    f"kill switch engaged at {row['at']} by {row['actor'] or 'the risk desk'}: "
                    f"{row['reason'] or 'no reason recorded'}; trading halted until an "
                    "operator resets it",
                    {"position": str(row["position"])},
                ),
            )
        r = self.results
        for row in conn.execute(
            select(r.c.position, r.c.venue, r.c.snapshot, r.c.taken_at, r.c.breaks).where(
                r.c.status == "BREAK", r.c.position > after, r.c.position <= upto
            )
        ).mappings():
            yield (
                int(row["position"]),
                Alert(
                    "ReconciliationBreak",
                    "critical",
                    f"{row['venue']}: snapshot {row['snapshot']} taken at {row['taken_at']} "
                    f"does not match the log ({row['breaks']} item(s) beyond tolerance)",
                    {"venue": str(row["venue"]), "snapshot": str(row["snapshot"])},
                ),
            )

    def run(self, stop: threading.Event, poll_seconds: float = 1.0) -> None:
        """Poll until `stop` is set; errors (database restarting) are logged and retried."""
        while not stop.is_set():
            try:
                self.poll()
            except Exception as exc:
                log.warning("alert watcher: %s: %s", type(exc).__name__, exc)
            stop.wait(poll_seconds)


def default_sink(webhook: WebhookAlerts | None) -> AlertSink:
    """Log every alert, and POST it when a webhook is configured."""
    return LoggingAlerts() if webhook is None else FanOutAlerts(LoggingAlerts(), webhook)
