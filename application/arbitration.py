"""Arbitration: turn many agents' signals into one signed score per instrument.

score = Σ agent weight × confidence × expected return × direction × liquidity × regime.
Opposite views on the same instrument net out in the sum.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from domain.signals import Signal

ZERO = Decimal(0)


@dataclass(frozen=True)
class WeightBounds:
    low: Decimal = Decimal("0.2")
    high: Decimal = Decimal("2")
    learning_rate: Decimal = Decimal("5")


def arbitrate(
    signals: Iterable[Signal],
    weights: Mapping[str, Decimal],
    liquidity: Mapping[str, Decimal],
    regime: Mapping[str, Decimal],
) -> dict[str, Decimal]:
    scores: dict[str, Decimal] = {}
    for s in signals:
        contribution = (
            weights.get(s.agent, Decimal(1))
            * s.confidence
            * s.expected_return
            * s.direction
            * liquidity.get(s.instrument, ZERO)
            * regime.get(s.instrument, ZERO)
        )
        scores[s.instrument] = scores.get(s.instrument, ZERO) + contribution
    return {i: v.quantize(Decimal("1e-12")) for i, v in sorted(scores.items())}


def liquidity_score(quote_volume: Decimal, reference: Decimal) -> Decimal:
    """1 for markets at least as liquid as the reference volume, less for thinner ones."""
    if reference <= 0:
        return ZERO
    return min(Decimal(1), quote_volume / reference).quantize(Decimal("1e-6"))


def adapt(
    weights: Mapping[str, Decimal],
    realized: Mapping[str, Decimal],
    bounds: WeightBounds = WeightBounds(),
) -> dict[str, Decimal]:
    """Nudge each agent's weight by its realized, direction-signed return; keep bounds."""
    adapted = dict(weights)
    for agent, outcome in realized.items():
        current = adapted.get(agent, Decimal(1))
        moved = current * (1 + bounds.learning_rate * outcome)
        adapted[agent] = min(bounds.high, max(bounds.low, moved)).quantize(Decimal("1e-6"))
    return adapted
