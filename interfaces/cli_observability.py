"""What a long-running read-side process adds around its work: `/metrics` and direct alerts.

`ais project --follow --metrics-port 9101` serves the read-model metrics (and the
process's own) on its own port while it follows the log; with `AIS_ALERT_WEBHOOK_URL` set
it also runs the log alert watcher (kill switch engaged, reconciliation BREAK → webhook).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

from adapters.settings import ConfigError, Settings, load_limits
from domain.limits import RiskLimits
from interfaces.read_side import ReadSide

if TYPE_CHECKING:  # imported when used: `ais token ...` and friends start fast
    from adapters.metrics import MetricsServer

log = logging.getLogger("ais.observability")


def configured_limits(settings: Settings) -> RiskLimits | None:
    """The risk limits the desk is configured with, for `ais_risk_limit_ratio` (optional)."""
    try:
        return load_limits(settings.config_dir / "risk.toml")
    except ConfigError as exc:
        log.warning("metrics without risk limits: %s", exc)
        return None


def serve_read_metrics(
    side: ReadSide, settings: Settings, port: int, host: str = "127.0.0.1"
) -> MetricsServer:
    """Start `/metrics` for the read side on host:port (0: any free port)."""
    from adapters.metrics import ReadModelCollector, ais_registry, start_metrics_server

    collector = ReadModelCollector(
        side.store, side.source.head, side.projections, limits=configured_limits(settings)
    )
    registry, _ = ais_registry(collector)
    try:
        return start_metrics_server(port, registry, host)
    except OSError as exc:
        raise ConfigError(f"--metrics-port {port}: {exc.strerror or exc}") from None


@contextmanager
def observe_read_side(
    side: ReadSide,
    settings: Settings,
    metrics_port: int | None,
    metrics_host: str = "127.0.0.1",
    *,
    announce: bool = True,
) -> Iterator[MetricsServer | None]:
    """Metrics server and alert watcher for as long as the block runs."""
    from adapters.alert_notifier import LogAlertWatcher, default_sink, webhook_from_settings

    with ExitStack() as stack:
        server = None
        if metrics_port is not None:
            server = serve_read_metrics(side, settings, metrics_port, metrics_host)
            stack.callback(server.close)
            if announce:
                print(f"metrics on http://{server.host}:{server.port}/metrics", flush=True)
        webhook = webhook_from_settings()
        if webhook is not None:
            stack.callback(webhook.close)
            watcher = LogAlertWatcher(side.store, default_sink(webhook), head=side.source.head)
            watcher.prepare()  # before the projector moves: nothing from now on is missed
            stop = threading.Event()
            thread = threading.Thread(
                target=watcher.run, args=(stop, 0.5), name="ais-alert-watch"
            )
            thread.daemon = True
            thread.start()
            stack.callback(thread.join, 5)
            stack.callback(stop.set)
            if announce:
                print(f"alerts: kill switch and BREAK events to {webhook.where}", flush=True)
        yield server
