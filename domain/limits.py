"""Risk limits: versioned by events on the RiskDesk, configured in config/risk.toml."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from domain.errors import InvalidCommand
from domain.values import to_decimal

_RATIOS = (
    "max_position_weight",
    "max_gross_leverage",
    "max_net_exposure",
    "max_drawdown",
    "daily_loss",
    "price_collar",
)


@dataclass(frozen=True)
class RiskLimits:
    """Every number a guard compares against. Ratios are fractions of NAV (0.05 = 5 %)."""

    max_order_notional: Decimal
    max_position_weight: Decimal
    max_gross_leverage: Decimal
    max_net_exposure: Decimal
    max_drawdown: Decimal
    daily_loss: Decimal
    price_collar: Decimal
    max_mark_age_seconds: int
    order_rate_limit: int
    order_rate_window_seconds: int
    duplicate_window_seconds: int
    approval_ttl_seconds: int
    # instrument -> max order quantity in base units; an instrument absent here is outside
    # the mandate, so the mandate and the per-instrument size limit are one table.
    mandate: dict[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("max_order_notional", *_RATIOS):
            value = to_decimal(getattr(self, name), name)
            if value <= 0:
                raise InvalidCommand(f"risk limit {name} must be positive, got {value}")
            object.__setattr__(self, name, value)
        for name in (
            "max_mark_age_seconds",
            "order_rate_limit",
            "order_rate_window_seconds",
            "duplicate_window_seconds",
            "approval_ttl_seconds",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise InvalidCommand(f"risk limit {name} must be a positive integer")
        mandate = {
            str(k): to_decimal(v, f"mandate.{k}.max_order_quantity")
            for k, v in dict(self.mandate).items()
        }
        if any(v <= 0 for v in mandate.values()):
            raise InvalidCommand("mandate max_order_quantity values must be positive")
        object.__setattr__(self, "mandate", mandate)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            k: (str(v) if isinstance(v, Decimal) else v)
            for k, v in self.__dict__.items()
            if k != "mandate"
        }
        data["mandate"] = {k: str(v) for k, v in sorted(self.mandate.items())}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RiskLimits:
        names = set(cls.__dataclass_fields__)
        missing = names - set(data) - {"mandate"}
        if missing:
            raise InvalidCommand(f"risk limits missing: {', '.join(sorted(missing))}")
        unknown = set(data) - names
        if unknown:
            raise InvalidCommand(f"unknown risk limits: {', '.join(sorted(unknown))}")
        return cls(**data)
