"""Settings from the environment (AIS_ prefix) and the TOML files in config/."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.config_error import ConfigError as ConfigError  # re-exported: imported from here
from domain.errors import InvalidCommand
from domain.limits import RiskLimits
from domain.values import Instrument, InstrumentCatalog

PROJECT_ROOT = Path(__file__).resolve().parents[1]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class Settings(BaseSettings):
    """Process settings; secrets come only from the environment or files it names."""

    model_config = SettingsConfigDict(env_prefix="AIS_", extra="ignore")

    home: Path = Path("var")
    database_url: str | None = None
    risk_hmac_keys: SecretStr | None = None
    risk_hmac_keys_file: Path | None = None
    config_dir: Path = PROJECT_ROOT / "config"
    account_id: str = "default"
    api_tokens_file: Path | None = None
    log_level: LogLevel = "INFO"  # of the JSON log lines on stderr (ais run/serve/project)

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_any_case(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @property
    def keys_file(self) -> Path:
        return self.risk_hmac_keys_file or self.home / "keys" / "hmac.key"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class _Limits(_Strict):
    max_order_notional: Decimal = Field(gt=0)
    max_position_weight: Decimal = Field(gt=0)
    max_gross_leverage: Decimal = Field(gt=0)
    max_net_exposure: Decimal = Field(gt=0)
    max_drawdown: Decimal = Field(gt=0, lt=1)
    daily_loss: Decimal = Field(gt=0, lt=1)
    price_collar: Decimal = Field(gt=0, lt=1)
    max_mark_age_seconds: int = Field(gt=0)
    order_rate_limit: int = Field(gt=0)
    order_rate_window_seconds: int = Field(gt=0)
    duplicate_window_seconds: int = Field(gt=0)
    approval_ttl_seconds: int = Field(gt=0)

    @field_validator("*", mode="before")
    @classmethod
    def _no_float(cls, value: Any) -> Any:
        if isinstance(value, float):
            raise ValueError('write decimals as strings, e.g. "0.05"')
        return value


class _MandateEntry(_Strict):
    max_order_quantity: Decimal = Field(gt=0)


class _RiskFile(_Strict):
    limits: _Limits
    mandate: dict[str, _MandateEntry]


class _InstrumentEntry(_Strict):
    base: str
    quote: str
    tick_size: Decimal = Field(gt=0)
    lot_size: Decimal = Field(gt=0)
    min_notional: Decimal = Field(ge=0)


class _InstrumentsFile(_Strict):
    instruments: dict[str, _InstrumentEntry]


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _validate(model: type[_Strict], path: Path) -> Any:
    try:
        return model.model_validate(_read_toml(path))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: {where}: {first['msg']}") from None


def load_limits(path: Path) -> RiskLimits:
    parsed: _RiskFile = _validate(_RiskFile, path)
    try:
        return RiskLimits(
            **parsed.limits.model_dump(),
            mandate={k: v.max_order_quantity for k, v in parsed.mandate.items()},
        )
    except InvalidCommand as exc:
        raise ConfigError(f"{path}: {exc}") from None


def load_catalog(path: Path) -> InstrumentCatalog:
    parsed: _InstrumentsFile = _validate(_InstrumentsFile, path)
    return InstrumentCatalog(
        [Instrument(symbol=s, **entry.model_dump()) for s, entry in parsed.instruments.items()]
    )
