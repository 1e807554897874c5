"""The `ais` command line. Bad input is one clear line on stderr and a non-zero exit."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from eventsourcing.persistence import PersistenceError
from pydantic import ValidationError
from rich.console import Console

from adapters.keys import init_keys
from adapters.settings import ConfigError, Settings
from application.errors import ConcurrencyConflict
from domain.approval import KeyRingError
from domain.errors import DomainError
from interfaces.bootstrap import build_app

app = typer.Typer(add_completion=False, no_args_is_help=True, help="AIS trading system")
keys_app = typer.Typer(no_args_is_help=True, help="HMAC and audit keys")
app.add_typer(keys_app, name="keys")
console = Console()
F = TypeVar("F", bound=Callable[..., Any])

_CLEAN_ERRORS = (
    ConfigError,
    KeyRingError,
    DomainError,
    ConcurrencyConflict,
    FileExistsError,
    PermissionError,
    PersistenceError,
    ValidationError,
)


def _one_line_errors(func: F) -> F:
    """Known failures print `error: ...` and exit 1; never a traceback for bad input."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except _CLEAN_ERRORS as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            print(f"error: {message}", file=sys.stderr)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


@app.command()
@_one_line_errors
def demo() -> None:
    """Run a scripted paper session on real candles and print orders and positions."""
    from interfaces.demo import run_demo

    run_demo(Settings(), console)


@keys_app.command("init")
@_one_line_errors
def keys_init(
    directory: Annotated[Path | None, typer.Option("--dir", help="default $AIS_HOME/keys")] = None,
) -> None:
    """Write hmac.key and an Ed25519 audit key pair (secrets mode 0600); never overwrite."""
    target = directory or Settings().home / "keys"
    for path in init_keys(target):
        console.print(f"wrote {path}")


@app.command()
@_one_line_errors
def kill(
    reason: Annotated[str, typer.Option(help="why (required)")],
    reset: Annotated[bool, typer.Option("--reset", help="reset an engaged kill switch")] = False,
    by: Annotated[str, typer.Option(help="operator name")] = "cli-operator",
) -> None:
    """Engage the kill switch (cancels open orders), or reset it with --reset."""
    trading = build_app(Settings())
    try:
        if reset:
            trading.reset_kill_switch(reason=reason, by=by)
        else:
            trading.engage_kill_switch(reason=reason, by=by)
        console.print(f"kill switch: {trading.desk().kill_state}")
    finally:
        trading.close()


@app.command()
@_one_line_errors
def status() -> None:
    """Show the risk desk: kill-switch state, cash, positions, open orders."""
    trading = build_app(Settings())
    try:
        desk = trading.desk()
        console.print(
            f"account {desk.account_id}: kill switch {desk.kill_state}"
            f"{' (' + desk.kill_reason + ')' if desk.kill_reason else ''}"
        )
        console.print(f"cash {desk.cash}, NAV {desk.nav()}, high-water mark {desk.high_water_mark}")
        for instrument, quantity in sorted(desk.positions.items()):
            console.print(f"position {instrument}: {quantity}")
        console.print(
            f"open orders: {len(desk.open_orders)}; approved {desk.approved_count}, "
            f"rejected {desk.rejected_count}"
        )
    finally:
        trading.close()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
