"""Backtest: the trading loop on a simulated clock, as fast as the machine allows.

Nothing here is backtest-specific except the clock being moved bar by bar: the loop,
the RiskDesk, the aggregates and the paper venue are the ones paper trading uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol
from uuid import UUID

from application.loop import TradingLoop
from application.ports import MarketData
from application.trading import TradingApp
from domain.commands import EndSession, StartSession
from domain.values import Mode

Progress = Callable[[int, int], None]


class ReplayableMarket(MarketData, Protocol):
    def clock_ticks(self) -> list[datetime]: ...


class SettableClock(Protocol):
    def __call__(self) -> datetime: ...

    def set(self, moment: datetime) -> None: ...


@dataclass(frozen=True)
class BacktestPlan:
    capital: Decimal
    config_digest: str
    start: datetime | None = None
    end: datetime | None = None
    mode: Mode = Mode.BACKTEST


def ticks_between(market: ReplayableMarket, plan: BacktestPlan) -> Sequence[datetime]:
    return [
        t
        for t in market.clock_ticks()
        if (plan.start is None or t >= plan.start) and (plan.end is None or t <= plan.end)
    ]


def run_backtest(
    app: TradingApp,
    clock: SettableClock,
    ticks: Sequence[datetime],
    plan: BacktestPlan,
    make_loop: Callable[[UUID], TradingLoop],
    progress: Progress | None = None,
) -> tuple[UUID, TradingLoop]:
    """Start a session, step the loop at every bar close, end the session."""
    if not ticks:
        raise ValueError("no bars between --start and --end")
    clock.set(ticks[0])
    session_id = app.ids()
    app.execute(
        StartSession(
            session_id=session_id,
            mode=plan.mode,
            starting_capital=plan.capital,
            config_digest=plan.config_digest,
        )
    )
    loop = make_loop(session_id)
    for n, tick in enumerate(ticks, start=1):
        clock.set(tick)
        loop.step()
        if progress is not None and (n % 50 == 0 or n == len(ticks)):
            progress(n, len(ticks))
    loop.close_out()
    app.execute(EndSession(session_id=session_id, reason="backtest finished"))
    return session_id, loop
