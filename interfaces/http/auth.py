"""Bearer-token authentication and the role matrix.

Role matrix (a router's `route_class=guarded(roles)` names the roles its routes allow):

| routes                                              | viewer | operator | auditor |
|-----------------------------------------------------|--------|----------|---------|
| GET /v1/portfolio, /exposure, /positions, /orders,  |  yes   |   yes    |   yes   |
| /risk/decisions, /reconciliation, /sessions         |        |          |         |
| GET /v1/events, /v1/audit/*                         |   -    |    -     |   yes   |
| POST /v1/kill-switch[/reset], /v1/sessions,         |   -    |   yes    |    -    |
| /v1/sessions/{id}/halt, /v1/orders/{id}/cancel      |        |          |         |
| /healthz, /readyz, /docs, /openapi.json             |  open  |   open   |   open  |

Operators and auditors read the viewer routes: an operator must see what it is about to
halt, an auditor must compare the read models with the log. The raw log stays with the
auditor (it carries every decision's inputs), and only an operator may change anything.

The check runs in a pure ASGI middleware *before* the request body is read or validated,
so a caller without a valid token learns nothing from validation errors (401 always wins
over 422, and 403 over 422). The guarded route repeats the check in its handler; the
caller's token entry (`caller(request)`) has the `name` that control-plane commands
record as who asked (never the token). The OpenAPI schema marks every guarded operation
with the bearer scheme and its roles (`x-ais-roles`).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import fastapi.routing
from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from interfaces.http.problems import ProblemError, problem_response
from interfaces.http.tokens import ApiToken, TokenError, TokenStore

PRINCIPAL = "ais.principal"
_SEEN_MAX = 4096
VIEWER_ROLES = frozenset({"viewer", "operator", "auditor"})
AUDITOR_ROLES = frozenset({"auditor"})
OPERATOR_ROLES = frozenset({"operator"})

SCHEME = "BearerToken"
SECURITY_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "`Authorization: Bearer <token>`; tokens come from `ais token create`.",
}


class AuthFailure(ProblemError):
    pass


def unauthorized(detail: str, presented: bool) -> AuthFailure:
    challenge = 'Bearer realm="ais"' + (', error="invalid_token"' if presented else "")
    return AuthFailure(
        401,
        "unauthorized",
        "Unauthorized",
        detail,
        headers={"WWW-Authenticate": challenge},
    )


def forbidden(token: ApiToken, roles: frozenset[str]) -> AuthFailure:
    return AuthFailure(
        403,
        "forbidden",
        "Forbidden",
        f"role {token.role!r} may not use this route; it needs {' or '.join(sorted(roles))}",
        headers={"WWW-Authenticate": 'Bearer realm="ais", error="insufficient_scope"'},
    )


def authenticate(tokens: TokenStore, header: str | None) -> ApiToken:
    if not header:
        raise unauthorized("missing Authorization: Bearer <token> header", presented=False)
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise unauthorized("use Authorization: Bearer <token>", presented=True)
    try:
        token = tokens.authenticate(credentials.strip())
    except TokenError as exc:  # unreadable token file: nobody gets in (fail closed)
        raise ProblemError(
            503,
            "token-store-unavailable",
            "Token store unavailable",
            str(exc),
            headers={"Retry-After": "5"},
        ) from None
    if token is None:
        raise unauthorized("the token is not valid (unknown or revoked)", presented=True)
    return token


def authorize(tokens: TokenStore, header: str | None, roles: frozenset[str]) -> ApiToken:
    token = authenticate(tokens, header)
    if token.role not in roles:
        raise forbidden(token, roles)
    return token


class GuardedRoute(APIRoute):
    """A route that only tokens holding one of `roles` may call (see `guarded`).

    Authorisation is a property of the route rather than a FastAPI dependency: the
    middleware reads `roles` to refuse a request before its body is read, and the
    handler checks again (defence in depth) without the dependency machinery, which
    cost more than the whole database read of `/v1/portfolio`.
    """

    roles: ClassVar[frozenset[str]] = frozenset()

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        roles = self.roles

        async def guard(request: Request) -> Response:
            token = request.scope.get(PRINCIPAL)
            if not isinstance(token, ApiToken):
                tokens: TokenStore = request.app.state.services.tokens
                token = authorize(tokens, request.headers.get("authorization"), roles)
                request.scope[PRINCIPAL] = token
            elif token.role not in roles:
                raise forbidden(token, roles)
            return await handler(request)

        return guard


_GUARDED: dict[frozenset[str], type[GuardedRoute]] = {}


def guarded(roles: frozenset[str]) -> type[GuardedRoute]:
    """The route class for `APIRouter(route_class=...)` of routes these roles may call."""
    if roles not in _GUARDED:
        name = "Guarded_" + "_".join(sorted(roles))
        _GUARDED[roles] = type(name, (GuardedRoute,), {"roles": roles})
    return _GUARDED[roles]


VIEWER = guarded(VIEWER_ROLES)
AUDITOR = guarded(AUDITOR_ROLES)
OPERATOR = guarded(OPERATOR_ROLES)


def caller(request: Request) -> ApiToken:
    """The token of a request to a guarded route (its `name` is who asked)."""
    token = request.scope.get(PRINCIPAL)
    if not isinstance(token, ApiToken):  # only reachable from an unguarded route
        raise unauthorized("this route needs a token", presented=False)
    return token


def route_roles(route: Any) -> frozenset[str] | None:
    """The roles a route allows; None when it is open."""
    original = getattr(route, "original_route", route)
    if isinstance(original, GuardedRoute):
        return original.roles
    return None


def effective_routes(routes: Sequence[BaseRoute]) -> list[Any]:
    """Every route as served, with the prefix and dependencies of its inclusion.

    FastAPI >= 0.13x keeps included routers as `_IncludedRouter` entries and exposes the
    flattened view through `fastapi.routing.iter_route_contexts`; older versions list
    the routes themselves.
    """
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    return list(flatten(routes)) if flatten is not None else list(routes)


@dataclass(frozen=True)
class RouteRule:
    path: str
    methods: frozenset[str]
    roles: frozenset[str] | None
    route: Any

    def matches(self, scope: Scope) -> Match:
        match, _ = self.route.matches(scope)
        assert isinstance(match, Match)
        return match


def route_rules(routes: Sequence[BaseRoute]) -> list[RouteRule]:
    """Path, methods and allowed roles (None: open) of every route the app serves."""
    return [
        RouteRule(
            str(getattr(route, "path", "")),
            frozenset(getattr(route, "methods", None) or ()),
            route_roles(route),
            route,
        )
        for route in effective_routes(routes)
    ]


class AuthMiddleware:
    """Authenticates and authorises before routing runs the endpoint or reads the body."""

    def __init__(self, app: ASGIApp, router: Router, tokens: TokenStore) -> None:
        self.app = app
        self.router = router
        self.tokens = tokens
        self._rules: list[RouteRule] | None = None
        self._routes = 0
        self._seen: dict[tuple[str, str], tuple[frozenset[str] | None, bool]] = {}

    def _required(self, scope: Scope) -> tuple[frozenset[str] | None, bool]:
        """(roles of the fully matching route, whether only a method mismatch matched)."""
        if self._rules is None or self._routes != len(self.router.routes):
            self._routes = len(self.router.routes)
            self._rules = route_rules(self.router.routes)
            self._seen.clear()
        key = (scope["method"], scope["path"])
        found = self._seen.get(key)
        if found is None:
            found = self._match(scope, self._rules)
            if len(self._seen) >= _SEEN_MAX:  # paths with ids are unbounded: stay small
                self._seen.clear()
            self._seen[key] = found
        return found

    @staticmethod
    def _match(
        scope: Scope, rules: list[RouteRule]
    ) -> tuple[frozenset[str] | None, bool]:
        partial: frozenset[str] | None = None
        for rule in rules:
            match = rule.matches(scope)
            if match is Match.FULL:
                return rule.roles, False
            if match is Match.PARTIAL:
                partial = partial or rule.roles
        return partial, partial is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        roles, method_mismatch = self._required(scope)
        if roles is not None:
            header = _header(scope, b"authorization")
            try:
                token = (
                    authenticate(self.tokens, header)
                    if method_mismatch  # 405 for any caller who may know the path
                    else authorize(self.tokens, header, roles)
                )
            except ProblemError as exc:
                response = problem_response(
                    exc.status,
                    exc.title,
                    exc.detail,
                    type_=exc.type,
                    instance=scope.get("path"),
                    headers=exc.headers,
                    **exc.extensions,
                )
                await response(scope, receive, send)
                return
            scope[PRINCIPAL] = token
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None


__all__ = [
    "AUDITOR",
    "AUDITOR_ROLES",
    "OPERATOR",
    "OPERATOR_ROLES",
    "VIEWER",
    "VIEWER_ROLES",
    "AuthMiddleware",
    "GuardedRoute",
    "caller",
    "guarded",
    "route_roles",
    "route_rules",
]
