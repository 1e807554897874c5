"""GET /v1/audit/export: the log streamed as NDJSON, line for line what `ais audit export
--format ndjson` writes (on both stores); auditor only; bad ranges are 422 problems; a log
that no longer matches its signed seal is refused, or its stream cut off. What does not
depend on the store runs on SQLite only."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from adapters.audit_export import ndjson_stream, plan_export
from adapters.audit_store import AuditStore, RawLog, load_signing_key
from adapters.clock import SimulatedClock
from adapters.keys import AUDIT_PRIVATE, init_keys
from adapters.persistence import eventsourcing_env
from adapters.read_store import engines
from interfaces.http.routers import audit as audit_router
from projections.audit_seal import public_key_pem
from tests.conftest import AppFactory, ReadModels
from tests.http_helpers import Api, running_api
from tests.test_audit import Audit, trade

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

EXPORT = "/v1/audit/export"
EVERY = 10  # a checkpoint every 10 events, so ranges start between checkpoints
SQLITE_ONLY = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


@dataclass
class Sealed:
    audit: Audit
    api: Api

    def cli_lines(self, out: Path, first: int | None, last: int | None) -> list[str]:
        """The lines `ais audit export --format ndjson` writes (its export function)."""
        self.audit.export(out, first=first, last=last)
        return (out / "events.ndjson").read_text(encoding="utf-8").splitlines()

    def stream(self, params: dict[str, Any] | None = None, role: str | None = "auditor") -> Any:
        return self.api.get(EXPORT, role, params=params or {})


@pytest.fixture
def sealed(
    make_app: AppFactory,
    read_models: ReadModels,
    store_url: str | None,
    tmp_path: Path,
    clock: SimulatedClock,
) -> Iterator[Sealed]:
    """A real history, sealed with checkpoints, then a few events after the last one."""
    app = make_app()
    trade(app, clock)
    home = tmp_path / "home"
    init_keys(home / "keys")
    key = load_signing_key(home / "keys" / AUDIT_PRIVATE)
    engine, schema = engines(store_url, home)
    log = RawLog(eventsourcing_env(store_url, home))
    store = AuditStore(engine, schema)
    try:
        audit = Audit(home, store_url, app, log, store, key, clock)
        audit.sealer(every=EVERY).checkpoint_now()
        for price in ("50200", "50300", "50400"):  # unsealed: the stream goes past the seal
            clock.advance(5)
            app.observe_mark("BTC-USDT", Decimal(price))
        with running_api(app, read_models, home) as api:
            yield Sealed(audit, api)
    finally:
        log.close()
        store.close()


def test_stream_is_the_cli_export_line_for_line(sealed: Sealed, tmp_path: Path) -> None:
    head = sealed.audit.log.head()
    checkpoints = sealed.audit.store.list_checkpoints()
    assert len(checkpoints) >= 3 and checkpoints[-1].last_position < head
    ranges: list[tuple[int | None, int | None]] = [
        (None, None),  # the whole log, through every checkpoint and past the last
        (EVERY + 5, None),  # starts after a checkpoint: the chain resumes from it
        (3, 2 * EVERY + 7),
        (None, EVERY),
        (head, head),
        (head - 1, head + 50),  # `to` beyond the head stops at the head
    ]
    for n, (first, last) in enumerate(ranges):
        params = {k: v for k, v in (("from", first), ("to", last)) if v is not None}
        response = sealed.stream(params)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/x-ndjson")
        upto = min(last or head, head)
        assert response.headers["x-ais-position"] == str(upto)
        lines = response.text.splitlines()
        assert lines, params
        records = [json.loads(line) for line in lines]
        positions = [r["position"] for r in records]
        assert positions == list(range(first or 1, upto + 1)), params
        assert {*records[0]} >= {"position", "state", "record_sha256", "chain", "record"}
        cli = sealed.cli_lines(tmp_path / f"export{n}", first, last)
        assert lines == cli, params
        manifest = json.loads((tmp_path / f"export{n}" / "manifest.json").read_text())
        assert response.headers["x-ais-chain-prev"] == manifest["chain_prev"]
    # Beyond the head: nothing yet, not an error.
    empty = sealed.stream({"from": head + 1})
    assert empty.status_code == 200 and empty.text == ""


@SQLITE_ONLY
def test_stream_reads_the_store_in_pages(sealed: Sealed, tmp_path: Path) -> None:
    """Memory is one read batch: the stream yields a chunk per page of the event store."""
    head = sealed.audit.log.head()
    plan = plan_export(
        sealed.audit.log, sealed.audit.store.list_checkpoints(), sealed.audit.key.public_key()
    )
    chunks = list(ndjson_stream(sealed.audit.log, plan, batch_size=7))
    assert len(chunks) == -(-head // 7)
    assert all(chunk.count(b"\n") <= 7 for chunk in chunks)
    whole = b"".join(chunks).decode("utf-8").splitlines()
    assert whole == sealed.cli_lines(tmp_path / "export", None, None)


BAD_RANGES = [{"from": "0"}, {"to": "-3"}, {"from": "abc"}, {"to": str(2**62 + 1)}]


@SQLITE_ONLY  # refused before the store is touched
def test_only_auditors_export_and_bad_ranges_are_422_problems(sealed: Sealed) -> None:
    for role in (None, "viewer", "operator"):
        response = sealed.stream({"from": "9", "to": "4"}, role=role)  # auth before validation
        assert response.status_code == (401 if role is None else 403), role
        assert response.headers["content-type"].startswith("application/problem+json")
        if role is None:
            assert response.headers["www-authenticate"].startswith("Bearer")
    reversed_range = sealed.stream({"from": "9", "to": "4"})
    assert reversed_range.status_code == 422
    assert reversed_range.headers["content-type"].startswith("application/problem+json")
    body = reversed_range.json()
    assert body["type"] == "urn:ais:problem:bad-range"
    assert body["detail"] == "from 9 is after to 4"
    for params in BAD_RANGES:
        response = sealed.stream(params)
        assert response.status_code == 422, (params, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        invalid = response.json()
        assert invalid["type"] == "urn:ais:problem:validation-error"
        assert invalid["detail"].startswith("query."), invalid


@SQLITE_ONLY
def test_a_seal_signed_by_another_key_is_refused(sealed: Sealed) -> None:
    """The server checks the checkpoints with its public key, like the CLI export does."""
    other = Ed25519PrivateKey.generate().public_key()
    sealed.audit.public_key.write_text(public_key_pem(other))
    response = sealed.stream()
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "not signed by this key" in response.json()["detail"]
    sealed.audit.public_key.unlink()  # no key at all: cannot check, so no export
    missing = sealed.stream()
    assert missing.status_code == 503 and "no audit public key" in missing.json()["detail"]


def tamper(sealed: Sealed, checkpoint: int) -> int:
    """Edit one byte of the event just before a signed checkpoint, as an intruder would."""
    edited = sealed.audit.store.list_checkpoints()[checkpoint].last_position - 1
    state = sealed.audit.state_at(edited)
    sealed.audit.set_state(edited, state.replace(b"}", b" }", 1))
    return edited


@SQLITE_ONLY
def test_an_edit_after_sealing_is_refused_before_the_stream_starts(sealed: Sealed) -> None:
    edited = tamper(sealed, 1)
    response = sealed.stream()
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert f"positions {EVERY + 1}..{2 * EVERY}" in response.json()["detail"], edited
    # A range that does not reach the edited event streams normally.
    assert sealed.stream({"to": EVERY}).status_code == 200


@SQLITE_ONLY
def test_an_edit_found_mid_stream_cuts_the_stream_off(
    sealed: Sealed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the status line is out, the server aborts the body: over the wire the client
    gets an incomplete chunked body, an error, never a clean end after a partial log."""
    monkeypatch.setattr(audit_router, "STREAM_BATCH", 4)
    edited = tamper(sealed, 2)
    received: list[str] = []
    with served(sealed.api.http) as base, httpx.Client(base_url=base, timeout=10) as client:
        auth = sealed.api.auth("auditor")
        with (
            pytest.raises(httpx.RemoteProtocolError),
            client.stream("GET", EXPORT, headers=auth) as response,
        ):
            assert response.status_code == 200
            received.extend(response.iter_lines())
    positions = [json.loads(line)["position"] for line in received if line]
    assert positions == list(range(1, len(positions) + 1))
    assert len(positions) < edited


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """The app on a real uvicorn server in a thread (its services are already started)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(app, port=port, log_level="critical", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
