"""Ports: what the application needs from the outside world, injected at the edges.

The trading loop sees market data and an exchange only through these protocols, so
backtest, paper, shadow and live run the same code with different adapters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol
from uuid import UUID

Clock = Callable[[], datetime]
IdFactory = Callable[[], UUID]


@dataclass(frozen=True)
class Candle:
    """One instrument-bar. `opens_at` is the bar's open time (UTC); prices in quote."""

    instrument: str
    opens_at: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


class MarketData(Protocol):
    """Candles per instrument, oldest first, up to and including `until` (no look-ahead)."""

    def instruments(self) -> Sequence[str]: ...

    def candles(self, instrument: str, until: datetime, limit: int) -> Sequence[Candle]: ...


@dataclass(frozen=True)
class OrderRequest:
    """What goes to a venue. The client order id is derived from the Order id."""

    client_order_id: str
    instrument: str
    side: str  # "BUY" | "SELL"
    order_type: str  # "MARKET" | "LIMIT"
    quantity: Decimal
    limit_price: Decimal | None


@dataclass(frozen=True)
class ExchangeOrder:
    """An order as the venue reports it."""

    client_order_id: str
    exchange_order_id: str
    status: str  # "open" | "closed" | "canceled" | "rejected"
    filled: Decimal
    reason: str | None = None


@dataclass(frozen=True)
class ExchangeFill:
    trade_id: str
    client_order_id: str | None
    exchange_order_id: str
    instrument: str
    side: str
    quantity: Decimal
    price: Decimal
    fee: Decimal
    at: datetime


@dataclass(frozen=True)
class AccountSnapshot:
    """Balances, positions and open orders as the venue returned them, and when."""

    taken_at: datetime
    balances: dict[str, Any]
    positions: list[dict[str, Any]] = field(default_factory=list)
    open_orders: list[dict[str, Any]] = field(default_factory=list)


class SubmissionUnknown(Exception):
    """The venue may or may not have the order (timeout, reset): look it up first."""


class ExchangeUnavailable(Exception):
    """The venue cannot be used now (circuit open, repeated failures): fail closed."""


class ExchangeGateway(Protocol):
    venue: str

    def submit(self, request: OrderRequest) -> ExchangeOrder: ...

    def cancel(self, client_order_id: str, instrument: str) -> ExchangeOrder | None: ...

    def lookup(self, client_order_id: str, instrument: str) -> ExchangeOrder | None: ...

    def fills(self, since: datetime | None) -> list[ExchangeFill]: ...

    def snapshot(self) -> AccountSnapshot: ...


@dataclass(frozen=True)
class Alert:
    """Something an operator must hear about: a circuit opened, a reconciliation broke."""

    name: str  # e.g. "ExchangeCircuitOpen", "ReconciliationBreak", "UnknownFill"
    severity: str  # "critical" | "warning" | "info"
    summary: str
    labels: dict[str, str] = field(default_factory=dict)


class AlertSink(Protocol):
    def send(self, alert: Alert) -> None: ...


@dataclass(frozen=True)
class ReconciliationItem:
    """One compared item: a balance, a position or an open order, with its verdict."""

    kind: str  # "balance" | "position" | "order"
    item: str  # asset, instrument or client order id
    expected: str | None
    observed: str | None
    difference: str | None
    status: str  # MATCHED | DRIFT | BREAK
    note: str = ""
    action: str = ""  # "lookup" | "cancel_at_venue" | "unknown_order" | "apply_fills" | ""


@dataclass(frozen=True)
class ReconciliationReport:
    venue: str
    snapshot: int  # the ExchangeAccount version that recorded the snapshot
    taken_at: str
    status: str  # the worst item status
    items: tuple[ReconciliationItem, ...]


class ReconciliationView(Protocol):
    """The reconciliation read model, caught up with the log before it answers."""

    def report(self, venue: str, snapshot: int) -> ReconciliationReport | None: ...


class Metrics(Protocol):
    """What the running loop reports (Prometheus in `adapters.metrics`; nothing by default).

    Read-model figures (NAV, drawdown, orders, lag...) are computed at scrape time from
    the read models; only what exists nowhere in the log is reported through here.
    """

    def observe_cycle(self, seconds: float) -> None: ...

    def observe_agent(self, agent: str, seconds: float) -> None: ...

    def count_fills(self, count: int = 1) -> None: ...

    def set_circuit_open(self, venue: str, is_open: bool) -> None: ...

    def set_event_store_up(self, up: bool) -> None: ...


class NoMetrics:
    """The default Metrics: reports nothing (backtests, tests)."""

    def observe_cycle(self, seconds: float) -> None:
        return None

    def observe_agent(self, agent: str, seconds: float) -> None:
        return None

    def count_fills(self, count: int = 1) -> None:
        return None

    def set_circuit_open(self, venue: str, is_open: bool) -> None:
        return None

    def set_event_store_up(self, up: bool) -> None:
        return None
