"""Strategy agents and the regime filter: pure functions of the candles they are given.

``default_agents()`` are the three signal agents the trading cycle runs on every
instrument; ``default_regime()`` is the filter whose scale the arbitration multiplies
their scores by. ``required_bars()`` is how many closed bars to fetch so that all of them
can speak.
"""

from __future__ import annotations

from application.agents.base import Agent, Analysis, CandleAgent
from application.agents.breakout import BreakoutAgent
from application.agents.mean_reversion import MeanReversionAgent
from application.agents.momentum import MomentumAgent
from application.agents.regime import FundingRate, Regime, RegimeFilter


def default_agents() -> tuple[Agent, ...]:
    """Trend, mean reversion and breakout with their documented 5-minute defaults."""
    return (MomentumAgent(), MeanReversionAgent(), BreakoutAgent())


def default_regime() -> RegimeFilter:
    return RegimeFilter()


def required_bars(agents: tuple[Agent, ...], regime: RegimeFilter | None = None) -> int:
    """The history to ask the market data for: the longest lookback among them."""
    lookbacks = [a.lookback for a in agents] + ([regime.lookback] if regime else [])
    return max(lookbacks, default=0)


__all__ = [
    "Agent",
    "Analysis",
    "BreakoutAgent",
    "CandleAgent",
    "FundingRate",
    "MeanReversionAgent",
    "MomentumAgent",
    "Regime",
    "RegimeFilter",
    "default_agents",
    "default_regime",
    "required_bars",
]
