"""Alert sinks: where the application's alerts go (the AlertSink port)."""

from __future__ import annotations

import logging
import threading

from application.ports import Alert

log = logging.getLogger("ais.alerts")
_LEVELS = {"critical": logging.CRITICAL, "warning": logging.WARNING, "info": logging.INFO}


class LoggingAlerts:
    """Alerts as log records (logger `ais.alerts`), one line each."""

    def send(self, alert: Alert) -> None:
        labels = " ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
        log.log(
            _LEVELS.get(alert.severity, logging.WARNING),
            "%s [%s] %s %s",
            alert.name,
            alert.severity,
            alert.summary,
            labels,
        )


class MemoryAlerts:
    """Keeps every alert, and forwards it (tests, and the CLI's summary)."""

    def __init__(self, forward: LoggingAlerts | None = None) -> None:
        self.sent: list[Alert] = []
        self._forward = forward
        self._lock = threading.Lock()

    def send(self, alert: Alert) -> None:
        with self._lock:
            self.sent.append(alert)
        if self._forward is not None:
            self._forward.send(alert)

    def named(self, name: str) -> list[Alert]:
        return [a for a in self.sent if a.name == name]
