"""A TCP proxy in front of PostgreSQL that a test can cut: a database outage for one
client, without touching the server other tests (and engineers) share.

`cut()` drops every proxied connection and answers new ones by closing them at once
(the client sees the server close the connection unexpectedly); `restore()` forwards
again.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class PgProxy:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.down = threading.Event()
        self.closed = threading.Event()
        self.cut_connections = 0

    def __enter__(self) -> PgProxy:
        threading.Thread(target=self._accept, name="pg-proxy", daemon=True).start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.closed.set()
        self.listener.close()
        self._drop_all()

    def cut(self) -> None:
        self.down.set()
        self.cut_connections += self._drop_all()

    def restore(self) -> None:
        self.down.clear()

    def _drop_all(self) -> int:
        with self.lock:
            dropped, self.sockets = self.sockets, []
        for s in dropped:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        return len(dropped) // 2

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.down.is_set():
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self.lock:
                self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        for s in (source, target):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
