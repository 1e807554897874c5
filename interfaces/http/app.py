"""The FastAPI application: read API over the read models, control plane, probes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.concurrency import run_in_threadpool

from adapters.metrics import ReadModelCollector, ais_registry, metrics_router
from adapters.settings import Settings
from interfaces.http.auth import SCHEME, SECURITY_SCHEME, AuthMiddleware, route_rules
from interfaces.http.body_limit import BodyLimit
from interfaces.http.live import PositionWatcher
from interfaces.http.problems import PROBLEM_JSON, install_problem_handlers
from interfaces.http.request_id import RequestIdMiddleware
from interfaces.http.routers import (
    audit,
    control,
    events,
    exposure,
    health,
    orders,
    portfolio,
    positions,
    reconciliation,
    reports,
    risk,
    sessions,
    stream,
    webhook,
)
from interfaces.http.routers import console as console_pages
from interfaces.http.services import Services

DESCRIPTION = """
Read API over the AIS read models and the operator's control plane.

* **Auth**: `Authorization: Bearer <token>` (made by `ais token create NAME --role ...`).
  Viewer routes accept viewer, operator and auditor tokens; `/v1/events` and `/v1/audit/*`
  need an auditor; the control plane (POST) needs an operator. Missing or invalid token:
  401; wrong role: 403.
* **Freshness**: every read carries `position` (and header `X-AIS-Position`), the log
  position the read model reflects. `?min_position=N` waits up to 5 s for the read model
  to reach N, then answers 503 (`urn:ais:problem:read-model-behind`, `Retry-After: 1`);
  an N beyond the end of the log is 409 at once (`urn:ais:problem:position-not-in-log`).
* **Money** is exact decimal strings. **Pages** take `limit` (1-500) and an opaque
  `cursor` (the previous page's `next_cursor`).
* **Errors** are RFC 9457 `application/problem+json`.
* **Console**: `/` serves the operator web console (sign in with a token); it follows
  `GET /v1/stream` (Server-Sent Events, viewer: the read models' position and the head of
  the log, pushed when either moves).
"""


def _version() -> str:
    try:
        return version("ais")
    except PackageNotFoundError:
        return "0"


def create_app(
    settings: Settings | None = None,
    *,
    services: Services | None = None,
    project: bool = False,
    access_log: bool = True,
) -> FastAPI:
    """The app on `settings` (default: from the environment), or on injected services.

    `access_log=False` drops the one INFO line per request (`ais serve --no-access-log`).

    `project=True` runs the projector in a background thread while the app runs (what
    `ais serve` does). Services built here are closed at shutdown; injected ones are
    left to their owner (their projector thread, if any, is still started and stopped).
    """
    owned = services is None
    svc = services or Services.from_settings(settings or Settings(), project=project)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(svc.start)
        try:
            yield
        finally:
            if svc.projector is not None:
                await run_in_threadpool(svc.projector.stop)
            if owned:
                await run_in_threadpool(svc.close)

    app = FastAPI(
        title="AIS",
        version=_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[{"name": t} for t in _TAGS],
    )
    app.state.services = svc
    install_problem_handlers(app)
    app.add_middleware(BodyLimit)  # inside auth: a caller without a token gets 401 first
    # Inside Starlette's error middleware (which answers 500 with our problem handler).
    app.add_middleware(AuthMiddleware, router=app.router, tokens=svc.tokens)
    # Added last: runs first, around auth.
    app.add_middleware(RequestIdMiddleware, log_requests=access_log)
    for module in (  # the hottest first: routing tries them in this order
        portfolio,
        exposure,
        positions,
        orders,
        risk,
        reconciliation,
        sessions,
        events,
        audit,
        control,
        webhook,
        health,
        stream,
        reports,
        console_pages,
    ):
        app.include_router(module.router)
    app.mount("/console", console_pages.assets(), name="console")
    app.state.position_watcher = PositionWatcher(svc)
    registry, _ = ais_registry(ReadModelCollector(svc.store, svc.events.head))
    app.include_router(metrics_router(registry))
    app.state.metrics = registry
    app.openapi = _openapi(app)  # type: ignore[method-assign]
    return app


_TAGS = (
    "portfolio", "exposure", "positions", "orders", "risk", "reconciliation", "sessions",
    "events", "audit", "control", "signals", "health", "reports",
)


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """FastAPI's schema, with every 4xx/5xx served as application/problem+json, and the
    bearer scheme plus the allowed roles (`x-ais-roles`) on every guarded operation."""

    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        paths = schema.get("paths", {})
        for path_item in paths.values():
            for operation in path_item.values():
                for code, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if code[:1] in "45" and "application/json" in content:
                        content[PROBLEM_JSON] = content.pop("application/json")
        for rule in route_rules(app.router.routes):
            if rule.roles is None:
                continue
            for method in rule.methods:
                operation = paths.get(rule.path, {}).get(method.lower())
                if operation is not None:
                    operation["security"] = [{SCHEME: []}]
                    operation["x-ais-roles"] = sorted(rule.roles)
        schema.setdefault("components", {}).setdefault("securitySchemes", {})[SCHEME] = (
            SECURITY_SCHEME
        )
        app.openapi_schema = schema
        return schema

    return build


__all__ = ["create_app"]
