"""`ais config check`: validate the effective configuration and print it, secrets masked.

Checks what the processes would load: the AIS_* environment (pydantic-settings), the
HMAC key ring, config/risk.toml and config/instruments.toml (required), and
config/exchange.toml and config/reconciliation.toml when present (shadow and live need
them). The first problem is one `error:` line naming the file (or variable) and the key,
exit 1. Registered on the main `ais` app in interfaces/cli.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from pydantic_settings import BaseSettings
from rich.console import Console
from rich.table import Table

from adapters.keys import load_keyring
from adapters.logging_json import redact
from adapters.settings import ConfigError, Settings, load_catalog, load_limits
from interfaces.console import one_line_errors

config_app = typer.Typer(no_args_is_help=True, help="Check the effective configuration")
S = TypeVar("S", bound=BaseSettings)
ABSENT = "absent (needed by shadow/live)"


def environment(kind: type[S]) -> S:
    """Settings from the environment; a bad value names its variable."""
    try:
        return kind()
    except ValidationError as exc:
        first = exc.errors()[0]
        prefix = str(kind.model_config.get("env_prefix", ""))
        name = prefix + "_".join(str(p) for p in first["loc"]).upper()
        raise ConfigError(f"environment: {name}: {first['msg']}") from None


def effective_config(config_dir: Path | None = None) -> dict[str, Any]:
    """Everything loaded and validated, as plain data; secrets not yet masked."""
    from adapters.alert_notifier import AlertSettings
    from adapters.exchange.config import ExchangeEnvironment, load_exchange, load_reconciliation

    settings = environment(Settings)
    directory = config_dir or settings.config_dir
    keyring = load_keyring(settings)
    catalog = load_catalog(directory / "instruments.toml")
    config: dict[str, Any] = {
        "settings": {**settings.model_dump(), "config_dir": directory},
        "approval_keys": {"key_ids": [k for k, _ in keyring.keys], "active": keyring.active_key_id},
        "risk": load_limits(directory / "risk.toml").to_dict(),
        "instruments": {s: dataclasses.asdict(catalog.get(s)) for s in sorted(catalog.symbols())},
        "alerts": environment(AlertSettings).model_dump(),
        "signals_webhook": {"secret": os.environ.get("AIS_WEBHOOK_SECRET") or None},
        "exchange": ABSENT,
        "reconciliation": ABSENT,
    }
    market = "spot"
    if (directory / "exchange.toml").exists():
        exchange = load_exchange(directory / "exchange.toml", environment(ExchangeEnvironment))
        market = exchange.gateway.market
        config["exchange"] = {
            **dataclasses.asdict(exchange.gateway),
            "unknown_outcome_seconds": exchange.unknown_outcome.total_seconds(),
        }
    if (directory / "reconciliation.toml").exists():
        found = load_reconciliation(directory / "reconciliation.toml", catalog, market)
        config["reconciliation"] = {
            **dataclasses.asdict(found.policy),
            "cancel_unknown_orders": found.cancel_unknown_orders,
        }
    return config


def rows(data: Any, path: str = "") -> list[tuple[str, str]]:
    """(dotted key, value) leaves of nested mappings, in order."""
    if isinstance(data, dict) and data:
        return [row for k, v in data.items() for row in rows(v, f"{path}.{k}" if path else k)]
    if isinstance(data, list):
        return [(path, ", ".join(str(v) for v in data) or "-")]
    return [(path, "-" if data in (None, {}) else str(data))]


@config_app.command("check")
@one_line_errors
def check(
    config_dir: Annotated[
        Path | None, typer.Option("--config-dir", help="default $AIS_CONFIG_DIR")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table")] = False,
) -> None:
    """Validate settings, keys and config files; print the effective config, secrets masked."""
    masked = redact(effective_config(config_dir))
    if as_json:
        print(json.dumps(masked, indent=2))
        return
    table = Table("section", "key", "value", title="AIS effective configuration")
    for section, values in masked.items():
        for key, value in rows(values):
            table.add_row(section, key, value)
    Console().print(table)
    print("config ok")
