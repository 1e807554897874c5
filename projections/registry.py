"""All read models, by name: what `ais project` and `ais replay` run."""

from __future__ import annotations

from projections.exposure import ExposureProjection
from projections.orders import OrdersProjection
from projections.portfolio import PortfolioProjection
from projections.positions import PositionsProjection
from projections.reconciliation import ReconciliationProjection
from projections.risk_decisions import RiskDecisionsProjection
from projections.sessions import SessionsProjection
from projections.spec import Projection


def all_projections() -> list[Projection]:
    return [
        PortfolioProjection(),
        ExposureProjection(),
        OrdersProjection(),
        PositionsProjection(),
        RiskDecisionsProjection(),
        SessionsProjection(),
        ReconciliationProjection(),
    ]


def select(names: list[str] | None) -> list[Projection]:
    projections = all_projections()
    if not names:
        return projections
    known = {p.name: p for p in projections}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown projection {unknown[0]!r}; known: {', '.join(sorted(known))}")
    return [known[n] for n in names]
