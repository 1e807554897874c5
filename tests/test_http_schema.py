"""A bounded, deterministic schemathesis run over the OpenAPI schema, in process (ASGI).

Every operation gets positive and negative examples with an operator token (an auditor
token for /v1/events, which operators may not read) against a store that already holds a
session, orders, fills and marks. Asserted: no 5xx, and status code, content type,
headers and body all conform to the published schema (problem+json for every error).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from adapters.clock import SeededIds, SimulatedClock
from adapters.event_log import StoredEventSource
from adapters.persistence import eventsourcing_env
from adapters.read_store import SqlReadStore, engines
from adapters.settings import load_catalog
from application.trading import TradingApp
from domain.commands import CancelOrder
from domain.limits import RiskLimits
from projections.registry import all_projections
from tests.conftest import CONFIG, KEYS, START, ReadModels, start_session
from tests.http_helpers import Api, fill, place, running_api

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
MODES = {
    schemathesis.GenerationMode.POSITIVE: 15,
    schemathesis.GenerationMode.NEGATIVE: 6,
}


@pytest.fixture
def seeded_api(tmp_path: Path, limits: RiskLimits) -> Iterator[Api]:
    home = tmp_path / "home"
    clock = SimulatedClock(START)
    trading = TradingApp(
        account_id="acct",
        limits=limits,
        catalog=load_catalog(CONFIG / "instruments.toml"),
        keys=KEYS,
        clock=clock,
        ids=SeededIds(7),
        env=eventsourcing_env(None, home),
    )
    engine, schema = engines(None, home)
    source = StoredEventSource(eventsourcing_env(None, home))
    models = ReadModels(source, SqlReadStore(engine, schema), all_projections())
    try:
        session_id = start_session(trading)
        known: dict[str, str] = {"session_id": str(session_id)}
        for n in range(3):
            clock.advance(5)
            order_id = place(trading, session_id, quantity=f"0.0{n + 1}", price="50000")
            known.setdefault("order_id", str(order_id))
            if n == 0:
                fill(trading, order_id, "0.01", "50000", "0.5")
            elif n == 1:
                trading.execute(CancelOrder(order_id=order_id, reason="seed"))
        models.projector().run_once()
        with running_api(
            trading, models, tmp_path / "api", max_wait=2.0, background=True
        ) as api:
            api.extra["known"] = known
            yield api
    finally:
        models.store.close()
        source.close()
        trading.close()


def exercise(
    operation: Any,
    mode: schemathesis.GenerationMode,
    examples: int,
    headers: dict[str, str],
    path_parameters: dict[str, str] | None,
    statuses: Counter[int],
) -> None:
    """Up to `examples` generated requests to one operation; raises on the first failure."""
    strategy = operation.as_strategy(mode, headers=headers, path_parameters=path_parameters)

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        response = case.call()
        statuses[response.status_code] += 1
        case.validate_response(response, checks=CHECKS)

    run()


def test_schemathesis_finds_no_server_error_and_no_schema_drift(seeded_api: Api) -> None:
    api = seeded_api
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.http)
    positive = schemathesis.GenerationMode.POSITIVE
    failures: list[str] = []
    valid: defaultdict[tuple[str, str], Counter[int]] = defaultdict(Counter)
    operations = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        operations += 1
        key = (operation.method.upper(), operation.path)
        auditor_only = operation.path.startswith(("/v1/events", "/v1/audit"))
        role = "auditor" if auditor_only else "operator"
        headers = {"Authorization": f"Bearer {api.tokens[role]}"}
        known = {
            name: value
            for name, value in api.extra["known"].items()
            if f"{{{name}}}" in operation.path
        }
        passes: list[tuple[schemathesis.GenerationMode, int, dict[str, str] | None]] = [
            (mode, examples, None) for mode, examples in MODES.items()
        ]
        if known:  # also aim at ids that exist, so the happy path is exercised too
            passes.append((positive, 5, known))
        for mode, examples, path_parameters in passes:
            statuses = valid[key] if mode is positive else Counter()
            try:
                exercise(operation, mode, examples, headers, path_parameters, statuses)
            except Unsatisfiable:  # no parameters to make invalid (negative mode)
                assert mode is not positive, operation.path
            except (Exception, BaseExceptionGroup) as exc:  # report every operation's failure
                failures.append(f"{key[0]} {key[1]} [{mode}]: {exc}")
    assert operations >= 15
    assert not failures, "\n\n".join(failures)
    # The run was not all refusals: every read answered 200 to valid input, and the
    # control plane really changed things with the operator's token.
    for (method, path), statuses in valid.items():
        # The seeded store is not sealed, so a proof is a 404 problem here; proofs of a
        # sealed log are fetched and checked offline in tests/test_e2e_http.py.
        if method == "GET" and path != "/v1/audit/proof/{position}":
            assert statuses[200] > 0, (path, statuses)
    assert valid[("POST", "/v1/kill-switch")][200] > 0
    assert valid[("POST", "/v1/sessions")].keys() & {201, 409}
