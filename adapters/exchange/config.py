"""Exchange and reconciliation settings: config/exchange.toml, config/reconciliation.toml
and the AIS_EXCHANGE_* environment (the only place credentials come from)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.exchange.ccxt_gateway import GatewayConfig
from adapters.settings import ConfigError, _Strict, _validate
from domain.reconciliation import Policy, Tolerance
from domain.values import InstrumentCatalog


class _Model(_Strict):
    @field_validator("*", mode="before")
    @classmethod
    def _no_float(cls, value: Any) -> Any:
        if isinstance(value, float):
            raise ValueError('write decimals as strings, e.g. "0.2"')
        return value


class _Exchange(_Model):
    venue: str = Field(min_length=1)
    market: Literal["spot", "swap"] = "spot"
    timeout_ms: int = Field(10_000, gt=0)
    recv_window_ms: int = Field(5_000, gt=0, le=60_000)
    ccxt_rate_limit_ms: int | None = Field(None, ge=0)
    requests_per_second: Decimal = Field(Decimal(10), gt=0)
    burst: int = Field(20, ge=1)
    retries: int = Field(3, ge=0, le=10)
    backoff_base_seconds: Decimal = Field(Decimal("0.2"), ge=0)
    backoff_cap_seconds: Decimal = Field(Decimal(5), ge=0)
    breaker_failures: int = Field(5, ge=1)
    breaker_cooldown_seconds: Decimal = Field(Decimal(30), gt=0)
    unknown_outcome_seconds: Decimal = Field(Decimal(15), gt=0)
    symbols: dict[str, str] = Field(default_factory=dict)


class _ExchangeFile(_Model):
    exchange: _Exchange


class _Tolerance(_Model):
    matched: Decimal = Field(ge=0)
    drift: Decimal = Field(ge=0)


class _Reconciliation(_Model):
    ignore_assets: list[str] = Field(default_factory=list)
    cancel_unknown_orders: bool = False
    snapshot_every_seconds: Decimal = Field(Decimal(60), gt=0)
    default: _Tolerance
    assets: dict[str, _Tolerance] = Field(default_factory=dict)


class _ReconciliationFile(_Model):
    reconciliation: _Reconciliation


class ExchangeEnvironment(BaseSettings):
    """AIS_EXCHANGE_*: credentials, and overrides of the venue and its base URL."""

    model_config = SettingsConfigDict(env_prefix="AIS_EXCHANGE_", extra="ignore")

    venue: str | None = None
    base_url: str | None = None
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    api_secret_file: Path | None = None

    def secret(self) -> str:
        if self.api_secret is not None:
            return self.api_secret.get_secret_value()
        if self.api_secret_file is not None:
            try:
                return self.api_secret_file.read_text().strip()
            except OSError as exc:
                raise ConfigError(f"AIS_EXCHANGE_API_SECRET_FILE: {exc}") from None
        return ""


@dataclass(frozen=True)
class ExchangeSettings:
    gateway: GatewayConfig
    unknown_outcome: timedelta  # how long a lost submission is looked up before it is given up


@dataclass(frozen=True)
class ReconciliationSettings:
    policy: Policy
    cancel_unknown_orders: bool
    snapshot_every: timedelta = timedelta(seconds=60)  # `ais run`: between two snapshots


def load_exchange(path: Path, environment: ExchangeEnvironment | None = None) -> ExchangeSettings:
    env = environment or ExchangeEnvironment()
    parsed: _ExchangeFile = _validate(_ExchangeFile, path)
    e = parsed.exchange
    venue = env.venue or e.venue
    return ExchangeSettings(
        gateway=GatewayConfig(
            venue=venue,
            market=e.market,
            api_key=env.api_key.get_secret_value() if env.api_key else "",
            secret=env.secret(),
            base_url=env.base_url or None,
            timeout_ms=e.timeout_ms,
            recv_window_ms=e.recv_window_ms,
            ccxt_rate_limit_ms=e.ccxt_rate_limit_ms,
            requests_per_second=float(e.requests_per_second),
            burst=e.burst,
            retries=e.retries,
            backoff_base_seconds=float(e.backoff_base_seconds),
            backoff_cap_seconds=float(e.backoff_cap_seconds),
            breaker_failures=e.breaker_failures,
            breaker_cooldown_seconds=float(e.breaker_cooldown_seconds),
            symbols=dict(e.symbols),
        ),
        unknown_outcome=timedelta(seconds=float(e.unknown_outcome_seconds)),
    )


def load_reconciliation(
    path: Path, catalog: InstrumentCatalog, market: str
) -> ReconciliationSettings:
    parsed: _ReconciliationFile = _validate(_ReconciliationFile, path)
    r = parsed.reconciliation

    def tolerance(t: _Tolerance, where: str) -> Tolerance:
        if t.drift < t.matched:
            raise ConfigError(f"{path}: {where}: drift must be >= matched")
        return Tolerance(t.matched, t.drift)

    instruments = {s: (catalog.get(s).base, catalog.get(s).quote) for s in catalog.symbols()}
    quotes = sorted({quote for _, quote in instruments.values()})
    if len(quotes) != 1:
        raise ConfigError(
            f"{path}: reconciliation needs one cash currency; the instruments are quoted in "
            f"{', '.join(quotes) or 'nothing'}"
        )
    return ReconciliationSettings(
        policy=Policy(
            market=market,
            cash_asset=quotes[0],
            instruments=instruments,
            tolerances={a: tolerance(t, f"assets.{a}") for a, t in r.assets.items()},
            default=tolerance(r.default, "default"),
            ignore_assets=tuple(r.ignore_assets),
        ),
        cancel_unknown_orders=r.cancel_unknown_orders,
        snapshot_every=timedelta(seconds=float(r.snapshot_every_seconds)),
    )
