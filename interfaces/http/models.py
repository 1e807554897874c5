"""Request and response bodies. Money, quantities and ratios are exact decimal strings."""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

# What the read models store: `str(Decimal)`, exact, possibly in exponent form ("1E-8").
Money = Annotated[
    str,
    Field(
        pattern=r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$",
        examples=["100000.00"],
        description="exact decimal as a string",
    ),
]
# What a client sends: plain positive decimal notation, no exponent, no float.
MoneyIn = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{1,15}(\.[0-9]{1,12})?$",
        examples=["100000"],
        description="exact positive decimal as a string (a JSON number is refused)",
    ),
]
Position = Annotated[
    int,
    Field(
        ge=0,
        description="log position the read model had reached when this was read: every "
        "event up to it is reflected",
    ),
]
Reason = Annotated[str, Field(min_length=1, max_length=400, pattern=r"\S")]

OrderStatus = Literal[
    "PENDING_NEW", "SUBMITTED", "OPEN", "PARTIALLY_FILLED", "FILLED", "CANCELED", "REJECTED",
    "EXPIRED",
]
Decision = Literal[
    "APPROVED", "REJECTED", "KILL_SWITCH_ENGAGED", "KILL_SWITCH_RESET", "REDUCING",
    "LIMITS_CHANGED",
]
ModeName = Literal["backtest", "paper", "shadow", "live"]

T = TypeVar("T")


class _Out(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Page(_Out, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null at the end"
    )
    position: Position


# --- portfolio ----------------------------------------------------------------------------
class Portfolio(_Out):
    """NAV, high-water mark, drawdown and today's P&L; all null before any session."""

    position: Position
    cash: Money | None
    nav: Money | None
    high_water_mark: Money | None
    drawdown: Money | None
    max_drawdown: Money | None
    day: str | None = Field(description="current UTC day of the daily P&L")
    day_start_nav: Money | None
    daily_pnl: Money | None
    as_of: str | None = Field(description="time of the last mark")
    updated_at_position: int | None = Field(description="log position of the last change")


class NavPoint(_Out):
    position: int = Field(description="log position of the mark")
    at: str
    nav: Money
    high_water_mark: Money
    drawdown: Money


class NavHistoryPage(Page[NavPoint]):
    pass


class NavSample(_Out):
    items: list[NavPoint]
    position: Position


# --- exposure -----------------------------------------------------------------------------
class InstrumentExposure(_Out):
    instrument: str
    quantity: Money
    mark: Money | None
    notional: Money | None
    weight: Money | None


class Exposure(_Out):
    position: Position
    nav: Money | None
    long: Money
    short: Money
    gross: Money
    net: Money
    leverage: Money | None
    instruments: list[InstrumentExposure]


# --- positions ----------------------------------------------------------------------------
class PositionRow(_Out):
    position_id: str
    account_id: str
    instrument: str
    quantity: Money
    average_entry: Money
    realized_pnl: Money
    fees: Money
    trades: int
    updated_at: str


class Positions(_Out):
    position: Position
    items: list[PositionRow]


# --- orders -------------------------------------------------------------------------------
class Order(_Out):
    order_id: str
    session_id: str
    instrument: str
    side: Literal["BUY", "SELL"]
    order_type: Literal["MARKET", "LIMIT"]
    quantity: Money
    limit_price: Money | None
    reduce_only: bool
    status: OrderStatus
    filled_quantity: Money
    filled_notional: Money
    average_price: Money | None
    fees: Money
    approval_id: str
    client_order_id: str | None
    exchange_order_id: str | None
    end_reason: str | None
    anomalies: int
    placed_at: str
    updated_at: str
    version: int


class OrderPage(Page[Order]):
    pass


class OrderDetail(Order):
    position: Position


# --- risk decisions -----------------------------------------------------------------------
class RiskDecision(_Out):
    position: int = Field(description="log position of the decision")
    at: str
    decision: Decision
    command_type: str | None
    target_id: str | None
    approval_id: str | None
    guard: str | None
    observed: str | None
    limit: str | None
    reason: str | None
    actor: str | None = Field(description="who asked (kill-switch changes)")


class RiskDecisionPage(Page[RiskDecision]):
    pass


class KillSwitchView(_Out):
    """The kill switch as the risk-decisions read model last saw it change."""

    position: Position
    kill_state: Literal["ACTIVE", "REDUCING", "HALTED"]
    changed_at: str | None = Field(description="time of the last change (none: never)")
    changed_at_position: int | None = Field(description="log position of the last change")
    reason: str | None
    actor: str | None = Field(description="who changed it (the token or CLI user name)")


# --- sessions -----------------------------------------------------------------------------
class Session(_Out):
    session_id: str
    mode: str
    starting_capital: Money
    config_digest: str
    status: str
    started_at: str
    updated_at: str
    last_reason: str | None


class SessionPage(Page[Session]):
    pass


# --- reconciliation -----------------------------------------------------------------------
class ReconciliationItem(_Out):
    """One compared item (a balance, a position, an open order) of a snapshot."""

    model_config = ConfigDict(extra="allow")

    kind: str | None = None
    item: str | None = None
    expected: str | None = None
    observed: str | None = None
    difference: str | None = None
    matched_within: str | None = None
    drift_within: str | None = None
    status: str | None = Field(default=None, examples=["MATCHED", "DRIFT", "BREAK"])
    note: str | None = None
    action: str | None = None


class Reconciliation(_Out):
    """One exchange snapshot against the projected book, with per-item differences."""

    model_config = ConfigDict(extra="allow")

    venue: str
    snapshot: int
    taken_at: str | None = None
    status: str | None = Field(default=None, examples=["MATCHED", "DRIFT", "BREAK"])
    matched: int | None = None
    drift: int | None = None
    breaks: int | None = None
    position: int | None = Field(default=None, description="log position of the snapshot")
    items: list[ReconciliationItem]


class ReconciliationPage(Page[Reconciliation]):
    pass


# --- events -------------------------------------------------------------------------------
class LoggedEventOut(_Out):
    position: int
    originator_id: str
    originator_version: int
    topic: str
    timestamp: str | None
    state: dict[str, Any] = Field(description="the decoded event (decimals as strings)")


class EventPage(Page[LoggedEventOut]):
    pass


# --- control ------------------------------------------------------------------------------
class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class StartSessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: ModeName
    starting_capital: MoneyIn


class Accepted(_Out):
    """The command was approved by the risk desk and recorded."""

    position: Position = Field(
        description="log position the change is at or before: pass it as `min_position` "
        "to read your own write"
    )
    requested_by: str = Field(description="name of the token that asked")


class KillSwitchState(Accepted):
    kill_state: Literal["ACTIVE", "REDUCING", "HALTED"]
    changed: bool


class SessionAccepted(Accepted):
    session_id: str
    status: str


class OrderAccepted(Accepted):
    order_id: str
    status: str


# --- health -------------------------------------------------------------------------------
class Health(_Out):
    status: Literal["ok"]


class Readiness(_Out):
    status: Literal["ready"]
    position: Position
    head: int = Field(description="last position in the event log")
    lag: dict[str, int] = Field(description="events each read model is behind the log")
