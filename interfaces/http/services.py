"""What the HTTP layer needs, built from settings or injected by tests.

`Services.from_settings` opens the read store and the event log on the configured
database, the token file, and (lazily, on the first control-plane command) a
`TradingApp` built exactly like the CLI's (`interfaces.bootstrap.build_app`).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from adapters.event_log import StoredEventSource
from adapters.persistence import eventsourcing_env
from adapters.read_store import SqlReadStore, engines
from adapters.settings import PROJECT_ROOT, Settings
from application.group_commit import GroupCommitter
from application.trading import TradingApp
from interfaces.http.queries import ReadQueries
from interfaces.http.tokens import TokenStore, tokens_file
from projections.registry import all_projections
from projections.runner import Projector
from projections.spec import LoggedEvent

log = logging.getLogger("ais.http")
DEFAULT_MAX_WAIT_SECONDS = 5.0


class EventLog(Protocol):
    def head(self) -> int: ...

    def read(self, after: int, limit: int) -> list[LoggedEvent]: ...


def config_digest(config_dir: Path) -> str:
    """SHA-256 over the risk limits and instrument files a session starts with."""
    digest = hashlib.sha256()
    for name in ("risk.toml", "instruments.toml"):
        path = config_dir / name
        digest.update(name.encode() + b"\0")
        digest.update(path.read_bytes() if path.exists() else b"")
        digest.update(b"\0")
    return "sha256:" + digest.hexdigest()


@dataclass
class Services:
    store: SqlReadStore
    events: EventLog
    tokens: TokenStore
    trading_factory: Callable[[], TradingApp] | None = None
    trading: TradingApp | None = None
    committer: GroupCommitter | None = None
    config_digest: str = field(default_factory=lambda: config_digest(PROJECT_ROOT / "config"))
    max_wait_seconds: float = DEFAULT_MAX_WAIT_SECONDS
    projector: BackgroundProjector | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)
    event_env: dict[str, str] | None = None  # the stored log, for audit proofs
    audit_public_key: Path | None = None  # embedded in proofs so they check offline
    config_dir: Path | None = None  # the instrument catalog, for the lots export

    def __post_init__(self) -> None:
        self.reads = ReadQueries(self.store)
        self.command_lock = threading.RLock()

    @classmethod
    def from_settings(cls, settings: Settings, *, project: bool = False) -> Services:
        """Open everything `ais serve` needs; `project` runs the projector in a thread."""
        from interfaces.bootstrap import build_app

        engine, schema = engines(settings.database_url, settings.home)
        store = SqlReadStore(engine, schema)
        closers: list[Callable[[], None]] = [store.close]
        try:
            source = StoredEventSource(eventsourcing_env(settings.database_url, settings.home))
            closers.append(source.close)
            tokens = TokenStore(tokens_file(settings))
            projector = None
            if project:
                projector = BackgroundProjector(
                    Projector(source, SqlReadStore(engine, schema), all_projections())
                )
            return cls(
                store=store,
                events=source,
                tokens=tokens,
                trading_factory=lambda: build_app(settings),
                config_digest=config_digest(settings.config_dir),
                projector=projector,
                closers=closers,
                event_env=eventsourcing_env(settings.database_url, settings.home),
                audit_public_key=settings.home / "keys" / "audit-ed25519.pub.pem",
                config_dir=settings.config_dir,
            )
        except BaseException:
            for close in reversed(closers):
                close()
            raise

    def trading_app(self) -> TradingApp:
        """The write side, built on first use (it opens the desk, so it needs the config)."""
        if self.trading is None:
            with self.command_lock:
                if self.trading is None:
                    if self.trading_factory is None:
                        raise RuntimeError("no trading application configured")
                    self.trading = self.trading_factory()
                    self.closers.append(self.trading.close)
        return self.trading

    def commands(self) -> GroupCommitter:
        """The one writer for commands from concurrent requests (group commit)."""
        if self.committer is None:
            app = self.trading_app()
            with self.command_lock:
                if self.committer is None:
                    self.committer = GroupCommitter(app)
                    self.closers.append(self.committer.close)
        return self.committer

    def start(self) -> None:
        if self.projector is not None:
            self.projector.start()

    def close(self) -> None:
        if self.projector is not None:
            self.projector.stop()
        self.reads.close()
        while self.closers:
            close = self.closers.pop()
            try:
                close()
            except Exception:  # closing is best effort; keep closing the rest
                log.exception("error while closing")


class BackgroundProjector:
    """Follows the log in a daemon thread so the read models stay fresh.

    The same loop as `Projector.follow` (run to the head, sleep a poll interval when
    there was nothing to read), except that an idle poll costs one `head()` query, and
    an error (database restarting, say) is logged and retried instead of ending the
    thread; `/readyz` reports it.
    """

    def __init__(self, projector: Projector, poll_seconds: float = 0.05) -> None:
        self.projector = projector
        self.poll_seconds = poll_seconds
        self.stop_event = threading.Event()
        self.error: str | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        # Not caught up first: a long log would hold the server's start-up. Until it is,
        # reads say honestly which position they reflect, and `min_position` waits.
        self._thread = threading.Thread(target=self._run, name="ais-projector", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        done = -1
        failures = 0
        while not self.stop_event.is_set():
            try:
                head = self.projector.source.head()
                if head > done:
                    self.projector.run_once()
                    done = min(
                        (self.projector.store.position(p.name) for p in self.projector.projections),
                        default=head,
                    )
                self.error = None
                failures = 0
            except Exception as exc:
                failures += 1
                self.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                log.exception("projector failed; retrying")
                self.stop_event.wait(min(0.1 * 2**failures, 5.0))
                continue
            self.stop_event.wait(self.poll_seconds)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
