"""Allocation: scores → target weights → order intents that the venue would accept."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from domain.values import InstrumentCatalog, Side

ZERO = Decimal(0)


@dataclass(frozen=True)
class AllocationPolicy:
    """Caps sit inside the risk limits so normal trading does not lean on the guards."""

    max_weight: Decimal  # per instrument, e.g. 0.95 × the position-weight limit
    max_gross: Decimal  # Σ |weight|
    score_to_weight: Decimal = Decimal(40)  # weight per unit of score (a Kelly-like scale)
    allow_short: bool = False  # spot venues cannot short
    dust_fraction: Decimal = Decimal("0.002")  # skip trades below 0.2 % of NAV
    max_order_notional: Decimal | None = None  # larger moves are made over several cycles


@dataclass(frozen=True)
class Intent:
    instrument: str
    side: Side
    quantity: Decimal
    limit_price: Decimal
    target_weight: Decimal


def target_weights(scores: Mapping[str, Decimal], policy: AllocationPolicy) -> dict[str, Decimal]:
    targets: dict[str, Decimal] = {}
    for instrument, score in scores.items():
        weight = score * policy.score_to_weight
        low = -policy.max_weight if policy.allow_short else ZERO
        targets[instrument] = min(policy.max_weight, max(low, weight))
    gross = sum((abs(w) for w in targets.values()), ZERO)
    if gross > policy.max_gross:
        targets = {i: w * policy.max_gross / gross for i, w in targets.items()}
    return {i: w.quantize(Decimal("1e-6"), rounding=ROUND_DOWN) for i, w in sorted(targets.items())}


def intents(
    targets: Mapping[str, Decimal],
    nav: Decimal,
    holdings: Mapping[str, Decimal],
    marks: Mapping[str, Decimal],
    catalog: InstrumentCatalog,
    policy: AllocationPolicy,
) -> list[Intent]:
    """Orders that move holdings towards the targets, on the venue's lot and tick grid."""
    result = []
    for instrument in sorted(set(targets) | {i for i, q in holdings.items() if q}):
        mark = marks.get(instrument)
        if mark is None or nav <= 0:
            continue
        spec = catalog.get(instrument)
        weight = targets.get(instrument, ZERO)
        held = holdings.get(instrument, ZERO)
        delta = weight * nav / mark - held
        if delta < 0 and not policy.allow_short:
            delta = max(delta, -max(held, ZERO))  # spot: sell at most what is held
        price = (mark / spec.tick_size).to_integral_value() * spec.tick_size
        size = abs(delta)
        if policy.max_order_notional is not None:
            size = min(size, policy.max_order_notional / price)
        quantity = (size / spec.lot_size).to_integral_value(ROUND_DOWN) * spec.lot_size
        notional = quantity * price
        if quantity <= 0 or notional < spec.min_notional or notional < policy.dust_fraction * nav:
            continue
        side = Side.BUY if delta > 0 else Side.SELL
        result.append(Intent(instrument, side, quantity, price, weight))
    return result
