"""The `ais` command line. Bad input is one clear line on stderr and a non-zero exit."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from adapters.keys import init_keys
from adapters.logging_json import configure_logging
from adapters.settings import Settings
from interfaces import cli_trading as trading_cli
from interfaces.audit_cli import audit_app
from interfaces.bootstrap import build_app
from interfaces.cli_config import config_app
from interfaces.cli_exchange import reconcile
from interfaces.cli_http import serve, token_app
from interfaces.cli_observability import observe_read_side
from interfaces.cli_report import report_app
from interfaces.cli_run import run
from interfaces.console import one_line_errors, progress_bar
from interfaces.read_side import read_side
from projections.replay import LANES_FROM

app = typer.Typer(add_completion=False, no_args_is_help=True, help="AIS trading system")
keys_app = typer.Typer(no_args_is_help=True, help="HMAC and audit keys")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
app.add_typer(config_app, name="config")
console = Console()


@keys_app.command("init")
@one_line_errors
def keys_init(
    directory: Annotated[Path | None, typer.Option("--dir", help="default $AIS_HOME/keys")] = None,
) -> None:
    """Write hmac.key and an Ed25519 audit key pair (secrets mode 0600); never overwrite."""
    target = directory or Settings().home / "keys"
    for path in init_keys(target):
        console.print(f"wrote {path}")


@app.command()
@one_line_errors
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
@one_line_errors
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


@app.command()
@one_line_errors
def project(
    follow: Annotated[bool, typer.Option("--follow", help="keep following the log")] = False,
    batch_size: Annotated[int, typer.Option(min=1, max=100_000)] = 1000,
    metrics_port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="with --follow: serve /metrics on this port"),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option(envvar="AIS_METRICS_HOST", help="interface for --metrics-port")
    ] = "127.0.0.1",
) -> None:
    """Bring every read model up to the head of the log (and keep it there with --follow)."""
    if metrics_port is not None and not follow:
        raise ValueError("--metrics-port needs --follow")
    settings = Settings()
    with read_side(settings) as side:
        projector = side.projector(batch_size)
        for name in projector.rebuilt:
            console.print(f"{name}: schema changed, rebuilding from position 0")
        if not follow:
            read = projector.run_once()
            console.print(f"projected {read} events; lag {projector.lag()}")
            return
        configure_logging(settings.log_level)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with observe_read_side(side, settings, metrics_port, metrics_host):
            try:
                projector.follow(stop)
            except KeyboardInterrupt:
                stop.set()


@app.command()
@one_line_errors
def replay(
    projection: Annotated[
        list[str] | None, typer.Option("--projection", help="only this read model (repeat)")
    ] = None,
    verify: Annotated[
        bool, typer.Option("--verify", help="rebuild aside and compare with the live models")
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="processes rebuilding side by side, each reading only the events its read "
            f"models want (from {LANES_FROM:,} events on; default: one per core)",
        ),
    ] = os.cpu_count() or 1,
) -> None:
    """Rebuild read models from position 0 and print their digest (last line)."""
    with read_side(Settings(), projection) as side, progress_bar() as bar:
        task = bar.add_task("replaying", total=None)

        def progress(position: int, head: int) -> None:
            bar.update(task, completed=position, total=head)

        result = side.verify(progress, workers) if verify else side.rebuild(progress, workers)
    for name, value in sorted(result.digests.items()):
        console.print(f"{name} {value}")
    if result.difference is not None:
        print(f"error: {result.difference.describe()}", file=sys.stderr)
        raise typer.Exit(1)
    if verify:
        console.print("verified: live read models equal a rebuild from position 0")
    print(f"digest {result.digest}")


app.command("demo")(one_line_errors(trading_cli.demo))
app.command("backtest")(one_line_errors(trading_cli.backtest))
app.command("serve")(serve)
app.add_typer(token_app, name="token")
app.add_typer(report_app, name="report")
app.command("reconcile")(one_line_errors(reconcile))
app.command("run")(one_line_errors(run))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
