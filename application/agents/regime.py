"""Regime filter: how much of the agents' conviction to let through, per instrument.

The filter emits no trades. ``RegimeFilter.scale(candles, funding)`` returns a
``Regime`` whose ``scale`` in [0, 1] the arbitration multiplies every agent's score on
that instrument by, with a ``label`` and a human-readable ``reason``. It is the minimum
of three independent brakes:

* **volatility shock** — ``ratio = sigma_short / sigma_long``, the realized volatility of
  1-bar returns over the last ``short_window`` bars against its own baseline over
  ``long_window`` bars. Up to ``calm_ratio`` nothing happens; above it the scale is
  ``calm_ratio / ratio`` (volatility targeting: exposure inversely proportional to the
  vol excess); at ``halt_ratio`` or more the scale is 0 — a market moving several times
  faster than over the last two days is no place for new risk. Relative to the instrument's own
  history, so a coin that is always wild is not penalised for being itself;
* **absolute volatility** — ``sigma_short`` annualized from the bar spacing; above
  ``max_annual_vol`` the scale is ``max_annual_vol / annualized``;
* **funding** (perpetuals, optional) — the latest funding rate known at the last bar's
  close. Within ``+/-funding_normal`` per interval nothing happens; from there to
  ``funding_extreme`` the scale falls linearly to ``funding_floor``. Extreme funding in
  either direction means crowded positioning and squeeze risk.

Too little or untrustworthy data gives scale 0 (label ``unknown``): fail closed.

Defaults (5-minute bars)
------------------------
``short_window=48`` (4 h) against ``long_window=576`` (48 h). The baseline must be longer
than the episodes it judges: with a 24-h baseline a day-long crash becomes its own
normal (on the day after the 21 January 2022 BTC fall, the most violent 4 h of the
bundled BTC-PERP data read only 1.6x a 24-h baseline, but 2.1x a 48-h one); two days
also cover two cycles of intraday seasonality. On the bundled series the ratio's median
is about 0.95 and its 90th percentile about 1.3, so ``calm_ratio=1.25`` leaves ordinary
days alone and trims the top decile; ``halt_ratio=4`` stops new risk only in a true
blow-off (the worst stretches of the January 2018 and 2022 sell-offs reached about 2.5).
``max_annual_vol=3`` (300 %): 5-minute realized vol includes bid/ask bounce, so even calm
BTC-quoted alts read 80-250 % annualized; 300 % trims only the truly violent (TRX and XLM
reached 770 % in their 17 January 2018 swings). The cost of the long baseline is a
two-day warm-up (scale 0 until 577 bars are there). Funding: Binance's neutral rate is
0.01 % per 8 h, so ``funding_normal=0.0003`` (3x neutral) is still ordinary,
``funding_extreme=0.002`` (0.2 %/8 h, about 220 % a year) is a crowded squeeze, floor
0.25; a rate older than ``funding_max_age`` (two 8-h intervals) is ignored as stale.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from application.agents.base import (
    ONE,
    ZERO,
    check_window,
    pstdev,
    quantize,
    simple_returns,
    to_decimal,
)
from application.ports import Candle

SECONDS_PER_YEAR = 365.25 * 24 * 3600
CALM, ELEVATED, TURBULENT, EXTREME, UNKNOWN = "calm", "elevated", "turbulent", "extreme", "unknown"


@dataclass(frozen=True)
class FundingRate:
    """A perpetual's funding rate per funding interval, known from ``at`` on."""

    at: datetime
    rate: Decimal


@dataclass(frozen=True)
class Regime:
    """The scale to apply to every agent's score on ``instrument``, and why."""

    instrument: str
    scale: Decimal  # 0..1
    label: str  # calm | elevated | turbulent | extreme | unknown
    reason: str
    features: Mapping[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not ZERO <= self.scale <= ONE:
            raise ValueError(f"regime scale must be within 0..1, got {self.scale}")

    def to_dict(self) -> dict[str, str]:
        out = {
            "instrument": self.instrument,
            "scale": str(self.scale),
            "label": self.label,
            "reason": self.reason,
        }
        out.update({k: str(v) for k, v in sorted(self.features.items())})
        return out


class RegimeFilter:
    name = "regime"

    def __init__(
        self,
        *,
        short_window: int = 48,
        long_window: int = 576,
        calm_ratio: Decimal = Decimal("1.25"),
        halt_ratio: Decimal = Decimal("4"),
        max_annual_vol: Decimal = Decimal("3"),
        funding_normal: Decimal = Decimal("0.0003"),
        funding_extreme: Decimal = Decimal("0.002"),
        funding_floor: Decimal = Decimal("0.25"),
        funding_max_age: timedelta = timedelta(hours=16),
        max_missing_fraction: Decimal = Decimal("0.1"),
    ) -> None:
        if not 2 <= short_window < long_window:
            raise ValueError("need 2 <= short_window < long_window")
        if not ZERO < calm_ratio < halt_ratio or max_annual_vol <= 0:
            raise ValueError("need 0 < calm_ratio < halt_ratio and max_annual_vol > 0")
        if not ZERO <= funding_normal < funding_extreme or not ZERO <= funding_floor <= ONE:
            raise ValueError("need 0 <= funding_normal < funding_extreme, 0 <= floor <= 1")
        self.short_window, self.long_window = short_window, long_window
        self.calm_ratio, self.halt_ratio = calm_ratio, halt_ratio
        self.max_annual_vol = max_annual_vol
        self.funding_normal, self.funding_extreme = funding_normal, funding_extreme
        self.funding_floor, self.funding_max_age = funding_floor, funding_max_age
        self.max_missing_fraction = max_missing_fraction
        self.lookback = long_window + 1  # long_window returns need one more close

    def scale(self, candles: Sequence[Candle], funding: Sequence[FundingRate] = ()) -> Regime:
        instrument = candles[-1].instrument if candles else ""
        window, problem = check_window(
            candles, self.lookback, self.max_missing_fraction, ("close",)
        )
        if window is None:
            return Regime(instrument, ZERO, UNKNOWN, f"no regime ({problem}): scale 0")
        bars, step = window.candles, window.step
        recent = bars[-1].opens_at - bars[-1 - self.short_window].opens_at
        if recent != step * self.short_window:
            return Regime(
                instrument,
                ZERO,
                UNKNOWN,
                f"no regime (a gap in the last {self.short_window} bars): scale 0",
            )
        returns = simple_returns(window.closes)
        sigma_short = pstdev(returns[-self.short_window :])
        sigma_long = pstdev(returns)
        annual = sigma_short * math.sqrt(SECONDS_PER_YEAR / step.total_seconds())
        # flat all day: no shock to measure
        ratio = to_decimal(sigma_short / sigma_long) if sigma_long > 0 else ONE
        sig_s, sig_l, annual_d = to_decimal(sigma_short), to_decimal(sigma_long), to_decimal(annual)

        if ratio >= self.halt_ratio:
            vol_scale = ZERO
        elif ratio > self.calm_ratio:
            vol_scale = self.calm_ratio / ratio
        else:
            vol_scale = ONE
        abs_scale = ONE if annual_d <= self.max_annual_vol else self.max_annual_vol / annual_d
        parts = [
            f"{self.short_window}-bar vol {sig_s * 100:.3f}%/bar is {ratio:.2f}x its "
            f"{self.long_window}-bar baseline {sig_l * 100:.3f}%/bar "
            f"(calm up to {self.calm_ratio}x, halt at {self.halt_ratio}x): {vol_scale:.2f}",
            f"annualized {annual_d:.0%} (ceiling {self.max_annual_vol:.0%}): {abs_scale:.2f}",
        ]
        features = {
            "sigma_short": sig_s,
            "sigma_long": sig_l,
            "vol_ratio": ratio,
            "annual_vol": annual_d,
            "vol_scale": quantize(vol_scale),
            "abs_scale": quantize(abs_scale),
        }

        funding_scale = ONE
        known_at = bars[-1].opens_at + step  # the last bar's close
        known = [f for f in funding if f.at <= known_at]
        if known:
            latest = max(known, key=lambda f: f.at)
            if known_at - latest.at > self.funding_max_age:
                parts.append(f"funding from {latest.at.isoformat()} is stale: ignored")
            elif latest.rate.is_finite():
                funding_scale = self._funding_scale(latest.rate)
                features["funding_rate"] = latest.rate
                features["funding_scale"] = quantize(funding_scale)
                parts.append(
                    f"funding {latest.rate * 100:+.4f}%/interval (normal within "
                    f"{self.funding_normal * 100:.3f}%, extreme {self.funding_extreme * 100:.3f}%)"
                    f": {funding_scale:.2f}"
                )
            else:
                funding_scale = ZERO
                parts.append("funding rate is not a number: scale 0")

        scale = quantize(min(vol_scale, abs_scale, funding_scale))
        if scale >= ONE:
            label = CALM
        elif scale >= Decimal("0.5"):
            label = ELEVATED
        elif scale > 0:
            label = TURBULENT
        else:
            label = EXTREME
        reason = "; ".join(parts) + f" -> scale {scale:.2f} ({label})"
        return Regime(instrument, scale, label, reason, features)

    def _funding_scale(self, rate: Decimal) -> Decimal:
        excess = abs(rate) - self.funding_normal
        if excess <= 0:
            return ONE
        span = self.funding_extreme - self.funding_normal
        fraction = min(ONE, excess / span)
        return ONE - (ONE - self.funding_floor) * fraction

    def __repr__(self) -> str:
        return f"RegimeFilter(lookback={self.lookback})"
