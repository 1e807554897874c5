"""The trading loop while its event store is unreachable: fail closed, say so, wait, resume.

Nothing can be approved or recorded without the store, and a step that cannot record
stops before it sends anything (an order is `Submitted` on disk before its request
leaves). So an outage only needs waiting out: the loop backs off instead of giving up
after a few failed steps, reports the outage once when it starts (a critical
`EventStoreUnavailable` alert, which the default sink also logs; `ais_event_store_up` 0)
and once when a step succeeds again (`EventStoreRecovered`, how long it lasted).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from application.ports import Alert, AlertSink, Metrics, NoMetrics

FIRST_WAIT = 0.1  # seconds before the first retry; doubled up to MAX_WAIT
MAX_WAIT = 5.0


class StoreOutage:
    def __init__(
        self,
        alerts: AlertSink,
        metrics: Metrics | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.alerts = alerts
        self.metrics: Metrics = metrics or NoMetrics()
        self.monotonic = monotonic
        self.since: float | None = None  # when the current outage began
        self.failures = 0

    def failed(self, error: Exception) -> float:
        """A step could not reach the store: report a new outage; seconds to wait."""
        if self.since is None:
            self.since = self.monotonic()
            self.metrics.set_event_store_up(False)
            summary = f"event store unreachable, trading paused: {error}"
            self.alerts.send(Alert("EventStoreUnavailable", "critical", summary))
        self.failures += 1
        return min(MAX_WAIT, FIRST_WAIT * 2.0 ** (self.failures - 1))

    def recovered(self) -> None:
        """A step went through: end the outage, if there was one."""
        if self.since is None:
            return
        lasted = self.monotonic() - self.since
        self.since, self.failures = None, 0
        self.metrics.set_event_store_up(True)
        summary = f"event store reachable again after {lasted:.1f}s, trading resumed"
        self.alerts.send(Alert("EventStoreRecovered", "info", summary))
