"""`ais serve` and `ais token create|list|revoke`: the HTTP side of the CLI.

Registered on the main `ais` app in interfaces/cli.py. FastAPI and uvicorn are imported
only by `serve`, so the token commands start fast.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated

import typer

from adapters.logging_json import configure_logging
from adapters.settings import Settings
from interfaces.console import one_line_errors
from interfaces.http.tokens import (
    ROLES,
    TokenStore,
    check_role,
    create_token,
    load_tokens,
    revoke_token,
    tokens_file,
)

token_app = typer.Typer(no_args_is_help=True, help="API tokens for the HTTP API")


def _fail(message: str) -> typer.Exit:
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(1)


@token_app.command("create")
@one_line_errors
def token_create(
    name: Annotated[str, typer.Argument(help="who holds the token; recorded as who asked")],
    role: Annotated[str | None, typer.Option("--role", help=f"one of {', '.join(ROLES)}")] = None,
) -> None:
    """Print a new API token once; only its SHA-256 hash is stored."""
    if role is None:
        raise _fail(f"--role is required: one of {', '.join(ROLES)}")
    path = tokens_file(Settings())
    token = create_token(path, name, check_role(role.strip().lower()), datetime.now(UTC))
    print(
        f"created {role.strip().lower()} token {name!r} (hash stored in {path}); "
        "it is shown only once:",
        file=sys.stderr,
    )
    print(token)


@token_app.command("list")
@one_line_errors
def token_list() -> None:
    """Names, roles and creation times of the stored tokens (never the tokens)."""
    path = tokens_file(Settings())
    tokens = load_tokens(path)
    if not tokens:
        print(f"no tokens in {path}", file=sys.stderr)
    for token in sorted(tokens.values(), key=lambda t: t.name):
        print(f"{token.name}\t{token.role}\t{token.created_at}")


@token_app.command("revoke")
@one_line_errors
def token_revoke(name: Annotated[str, typer.Argument(help="token name")]) -> None:
    """Remove a token; a running server refuses it from its next request."""
    path = tokens_file(Settings())
    revoke_token(path, name)
    print(f"revoked {name!r}", file=sys.stderr)


@one_line_errors
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[str, typer.Option(help="TCP port (1-65535)")] = "8000",
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="log every request")
    ] = True,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Serve the read API and control plane (OpenAPI at /docs), projecting in process."""
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise _fail(f"--port {port!r}: must be a number from 1 to 65535")
    if log_level not in ("critical", "error", "warning", "info", "debug", "trace"):
        raise _fail(f"--log-level {log_level!r}: critical, error, warning, info or debug")
    settings = Settings()
    configure_logging(settings.log_level)  # uvicorn's loggers too (log_config=None below)
    tokens = TokenStore(tokens_file(settings))  # unreadable file: one line, exit 1
    if not len(tokens):
        print(
            f"warning: no API tokens in {tokens.path}: every /v1 request gets 401; "
            "make one with `ais token create NAME --role viewer|operator|auditor`",
            file=sys.stderr,
        )

    import uvicorn

    from interfaces.bootstrap import freeze_startup_heap
    from interfaces.http.app import create_app
    from interfaces.http.services import Services

    services = Services.from_settings(settings, project=True)
    try:
        trading = services.trading_app()  # config and keys are checked now, not later
        if trading.keys.active_key_id is None:
            print(
                "warning: no HMAC key: control-plane commands will be refused (503); "
                "run `ais keys init` or set AIS_RISK_HMAC_KEYS",
                file=sys.stderr,
            )
    except BaseException:
        services.close()
        raise
    app = create_app(services=services, access_log=access_log)
    freeze_startup_heap()
    try:
        uvicorn.run(
            app,
            host=host,
            port=int(port),
            access_log=access_log,
            log_level=log_level,
            log_config=None,
            proxy_headers=False,
            timeout_graceful_shutdown=3,  # open console streams must not hold a stop
        )
    finally:
        services.close()
