"""Trend / momentum: EMA crossover confirmed by volatility-scaled time-series momentum.

Logic
-----
* ``gap = EMA(fast) / EMA(slow) - 1`` gives the trend's direction;
* ``momentum = close / close[-slow] - 1`` is the return over the slow window, and
  ``t = momentum / (sigma * sqrt(slow))`` scales it by the bar volatility ``sigma`` (the
  standard deviation of 1-bar returns over ``vol_window``): how many standard deviations
  the move is. A 1 % move means little on a coin that swings 1 % a bar, much on one that
  swings 0.1 %.
* Long when the fast EMA is above the slow one *and* ``t >= entry_t``; short mirror-wise.
  Both must agree, so a crossover on a drift that is noise, or a sharp move the averages
  have not turned on yet, gives nothing.
* confidence = ``min(1, |t| / full_t)``;
* expected return = ``persistence * momentum * horizon / slow``: the recent drift per bar,
  of which a fraction ``persistence`` is expected to continue over ``horizon_bars``.

Defaults (5-minute bars)
------------------------
``fast=12`` (1 h) and ``slow=48`` (4 h): the 1:4 ratio is the usual crossover spacing; 4 h
is long enough to average out the bid/ask bounce of 5-minute alt quotes and short enough
to catch the intraday legs of a sell-off. ``vol_window=96`` (8 h) gives a stable sigma
that still reacts within a session. ``entry_t=1.5``: a 4-h move of 1.5 sigma*sqrt(48) is
outside what the 5-minute noise makes on its own in the bulk of the bundled data;
``full_t=4`` gives full confidence only to exceptional moves. ``persistence=0.25`` and
``horizon_bars=24`` (2 h): short-horizon crypto trends decay fast, so the claim is modest —
a quarter of the recent per-bar drift continuing for 2 h, i.e. 1/8 of the 4-h move. (On
the bundled January 2018 5-minute pairs even that was optimistic: 2-h returns after a
signal were negative on average, the market mean-reverted at this horizon. The
arbitration's performance-adapted weights exist for exactly this.)
``lookback = 3 * slow`` lets the slow EMA forget its seed (weight < 2 %).
"""

from __future__ import annotations

import math
from decimal import Decimal

from application.agents.base import (
    LONG,
    ONE,
    SHORT,
    ZERO,
    Analysis,
    CandleAgent,
    Window,
    ema,
    pct,
    price,
    pstdev,
    simple_returns,
)
from domain.signals import Signal


class MomentumAgent(CandleAgent):
    def __init__(
        self,
        *,
        name: str = "momentum",
        fast: int = 12,
        slow: int = 48,
        vol_window: int = 96,
        entry_t: Decimal = Decimal("1.5"),
        full_t: Decimal = Decimal("4"),
        persistence: Decimal = Decimal("0.25"),
        horizon_bars: int = 24,
        max_expected_return: Decimal = Decimal("0.05"),
        min_confidence: Decimal = Decimal("0.05"),
    ) -> None:
        super().__init__(max_expected_return=max_expected_return, min_confidence=min_confidence)
        if not 1 <= fast < slow:
            raise ValueError("need 1 <= fast < slow")
        if vol_window < 2 or horizon_bars < 1:
            raise ValueError("vol_window must be >= 2 and horizon_bars >= 1")
        if not ZERO < entry_t <= full_t or not ZERO < persistence <= ONE:
            raise ValueError("need 0 < entry_t <= full_t and 0 < persistence <= 1")
        self.name = name
        self.fields = ("close",)
        self.fast, self.slow, self.vol_window = fast, slow, vol_window
        self.entry_t, self.full_t = entry_t, full_t
        self.persistence, self.horizon_bars = persistence, horizon_bars
        self.lookback = max(3 * slow, vol_window + 1, slow + 1)

    def _features(self, window: Window) -> dict[str, float]:
        closes = window.closes
        fast, slow = ema(closes, self.fast), ema(closes, self.slow)
        momentum = closes[-1] / closes[-1 - self.slow] - 1.0
        sigma = pstdev(simple_returns(closes[-1 - self.vol_window :]))
        scale = sigma * math.sqrt(self.slow)
        return {
            "ema_fast": fast,
            "ema_slow": slow,
            "ema_gap": fast / slow - 1.0,
            "momentum": momentum,
            "sigma": sigma,
            "t": momentum / scale if scale > 0 else 0.0,
        }

    def propose(self, analysis: Analysis) -> Signal | None:
        if not analysis.ready:
            return None
        f = analysis.features
        gap, momentum, t, sigma = f["ema_gap"], f["momentum"], f["t"], f["sigma"]
        if sigma <= 0:
            return None  # flat prices: no trend to follow, no scale to judge it by
        if gap > 0 and t >= self.entry_t:
            direction, side = LONG, "above"
        elif gap < 0 and t <= -self.entry_t:
            direction, side = SHORT, "below"
        else:
            return None
        confidence = min(ONE, abs(t) / self.full_t)
        expected = self.persistence * momentum * self.horizon_bars / self.slow
        reason = (
            f"EMA{self.fast} {price(f['ema_fast'])} {side} EMA{self.slow} "
            f"{price(f['ema_slow'])} ({pct(gap)}); {self.slow}-bar return {pct(momentum)} "
            f"= {t:+.2f} sigma (sigma {sigma * 100:.3f}%/bar over {self.vol_window} bars); "
            f"expect {self.persistence:.0%} of the drift to persist: {pct(expected)} "
            f"over {self.horizon_bars} bars"
        )
        return Signal(
            agent=self.name,
            instrument=analysis.instrument,
            direction=direction,
            confidence=confidence,
            expected_return=expected,
            horizon_bars=self.horizon_bars,
            reason=reason,
        )
