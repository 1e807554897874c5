"""RiskDesk aggregate: the one approver. It keeps its own book from what it approved.

Every decision is an event: `CommandApproved` carries the token it issued,
`CommandRejected` names the guard, the observed value and the limit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.approval import ApprovalToken, KeyRing, sign
from domain.base import AISAggregate
from domain.book import ZERO, Book, Mark, OpenOrder, nav_of
from domain.commands import (
    Command,
    PlaceOrder,
    RecordFill,
    ResumeSession,
    StartSession,
    SubmitOrder,
)
from domain.desk_snapshot import DeskSnapshot
from domain.errors import IllegalTransition, InvalidCommand
from domain.guards import ACTIVE, HALTED, REDUCING, OrderCheck, Rejection, check_order
from domain.limits import RiskLimits
from domain.values import Side, check_text, to_decimal

_ENDS_ORDER = frozenset({"CancelOrder", "RejectOrder", "ExpireOrder"})
_SESSION_STATUS = {"HaltSession": "HALTED", "ResumeSession": ACTIVE, "EndSession": "ENDED"}
# A fill this many collars away from the mark is not a plausible execution.
_FILL_COLLAR_MULTIPLE = 2


def _event_fields(command: Command) -> dict[str, Any]:
    return {k: (v.value if isinstance(v, Enum) else v) for k, v in command.fields().items()}


class RiskDesk(AISAggregate):
    # Every approval and every mark is a desk event, so its history grows without bound;
    # the application snapshots it, and this class keeps the value objects' types.
    Snapshot = DeskSnapshot

    @event("Opened")
    def __init__(self, id: UUID, account_id: str, limits: dict[str, Any], key_id: str | None):
        self.account_id = account_id
        self.limits = RiskLimits.from_dict(limits)
        self.key_id = key_id
        self.kill_state = ACTIVE
        self.kill_reason: str | None = None
        self.cash = ZERO
        self.positions: dict[str, Decimal] = {}
        self.marks: dict[str, Mark] = {}
        self.open_orders: dict[str, OpenOrder] = {}
        self.high_water_mark = ZERO
        self.day: str | None = None
        self.day_start_nav = ZERO
        self.sessions: dict[str, str] = {}
        self.recent_orders: list[tuple[datetime, str]] = []
        self.approved_count = 0
        self.rejected_count = 0

    # --- the view the guards see -------------------------------------------------------
    def book(self) -> Book:
        return Book(
            cash=self.cash,
            positions=dict(self.positions),
            marks=dict(self.marks),
            open_orders=dict(self.open_orders),
            high_water_mark=self.high_water_mark,
            day_start_nav=self.day_start_nav,
        )

    def nav(self) -> Decimal | None:
        return nav_of(self.cash, self.positions, self.marks)  # no Book: marks ask on every tick

    # --- approval ----------------------------------------------------------------------
    def approve(
        self,
        command: Command,
        *,
        target_version: int | None,
        approval_id: UUID,
        now: datetime,
        keys: KeyRing,
    ) -> ApprovalToken | Rejection:
        """Record the decision and return the token, or the rejection with its guard."""
        check = self._order_check(command, now) if isinstance(command, PlaceOrder) else None
        rejection = check_order(check) if check is not None else self._evaluate(command)
        if rejection is not None:
            self.record_rejection(command, rejection, now)
            return rejection
        token = sign(
            keys,
            approval_id=approval_id,
            command=command,
            target_version=target_version,
            issued_at=now,
            expires_at=now + timedelta(seconds=self.limits.approval_ttl_seconds),
            riskdesk_version=self.version + 1,
        )
        anomaly = self._fill_anomaly(command)
        increasing = check is not None and not check.reducing
        self.trigger_event(
            self.CommandApproved,
            approval=token.to_dict(),
            command=_event_fields(command),
            intent=command.intent_digest() if isinstance(command, PlaceOrder) else None,
            increasing=increasing,
            at=now,
        )
        if anomaly is not None:
            self.engage_kill_switch(reason=f"fill anomaly: {anomaly}", by="riskdesk", at=now)
        return token

    def record_rejection(self, command: Command, rejection: Rejection, now: datetime) -> None:
        """A refusal is an event too: the guard, what it saw and the limit it applied."""
        self._rejected(
            command_type=command.command_type,
            target_id=command.target_id,
            command_digest=command.digest(),
            guard=rejection.guard,
            observed=rejection.observed,
            limit=rejection.limit,
            reason=rejection.reason,
            at=now,
        )
        if rejection.engage_kill_switch:
            self.engage_kill_switch(
                reason=f"{rejection.guard}: {rejection.reason}", by="riskdesk", at=now
            )

    def _order_check(self, command: PlaceOrder, now: datetime) -> OrderCheck:
        """One view of the desk for every order guard and the book-keeping after them."""
        return OrderCheck(
            instrument=command.instrument,
            side=command.side,
            quantity=command.quantity,
            limit_price=command.limit_price,
            reduce_only=command.reduce_only,
            intent_digest=command.intent_digest(),
            now=now,
            kill_state=self.kill_state,
            session_status=self.sessions.get(str(command.session_id)),
            limits=self.limits,
            book=self.book(),
            recent_orders=tuple(self.recent_orders),
        )

    def _evaluate(self, command: Command) -> Rejection | None:
        """The guards of every command but PlaceOrder (which `check_order` covers)."""
        if isinstance(command, StartSession | ResumeSession) and self.kill_state == HALTED:
            return Rejection("kill_switch", HALTED, ACTIVE, "kill switch engaged")
        if isinstance(command, StartSession | ResumeSession):
            others = (s for s, st in self.sessions.items() if s != str(command.session_id))
            active = sorted(s for s in others if self.sessions[s] == ACTIVE)
            if active:
                return Rejection(
                    "session_active", active[0], "one active session", "a session is running"
                )
        if isinstance(command, SubmitOrder):
            order = self.open_orders.get(str(command.order_id))
            if order is None:
                return Rejection(
                    "order_known",
                    str(command.order_id),
                    "approved orders",
                    "order unknown to the risk desk",
                )
            if order.increasing and self.kill_state != ACTIVE:
                return Rejection(
                    "kill_switch", self.kill_state, ACTIVE, "risk-increasing order held back"
                )
        return None

    def _fill_anomaly(self, command: Command) -> str | None:
        if not isinstance(command, RecordFill):
            return None
        order = self.open_orders.get(str(command.order_id))
        if order is None:
            return f"fill {command.trade_id} for an order with nothing open"
        if command.quantity > order.remaining:
            return f"fill {command.trade_id} of {command.quantity} > open {order.remaining}"
        mark = self.marks.get(order.instrument)
        if mark is not None:
            deviation = abs(command.price - mark.price) / mark.price
            if deviation > self.limits.price_collar * _FILL_COLLAR_MULTIPLE:
                return f"fill {command.trade_id} at {command.price} far from mark {mark.price}"
        return None

    class CommandApproved(AISAggregate.Event):
        """An explicit event class, not @event: triggering it directly skips the decorator's
        argument binding (about 5 us of an approval). Topic and fields are those the @event
        form stored, so logs written before read back unchanged.
        """

        approval: dict[str, Any]
        command: dict[str, Any]
        intent: str | None
        increasing: bool
        at: datetime

        def apply(self, aggregate: RiskDesk) -> None:
            aggregate._book_approved(
                self.approval, self.command, self.intent, self.increasing, self.at
            )

    def _book_approved(
        self,
        approval: dict[str, Any],
        command: dict[str, Any],
        intent: str | None,
        increasing: bool,
        at: datetime,
    ) -> None:
        """Keep the desk's book from an approval (live and on replay)."""
        self.approved_count += 1
        kind = approval["command_type"]
        if kind == "StartSession":
            self._fund(Decimal(command["starting_capital"]), at)
            self.sessions[str(command["session_id"])] = ACTIVE
        elif kind in _SESSION_STATUS:
            self.sessions[str(command["session_id"])] = _SESSION_STATUS[kind]
        elif kind == "PlaceOrder":
            self.open_orders[str(command["order_id"])] = OpenOrder(
                instrument=command["instrument"],
                side=Side(command["side"]),
                remaining=Decimal(command["quantity"]),
                price=command["limit_price"],
                increasing=increasing,
            )
            assert intent is not None
            self._remember_order(at, intent)
        elif kind == "RecordFill":
            self._reduce_open(str(command["order_id"]), Decimal(command["quantity"]))
        elif kind in _ENDS_ORDER:
            self.open_orders.pop(str(command["order_id"]), None)
        elif kind == "ApplyFill":
            signed = Side(command["side"]).sign * Decimal(command["quantity"])
            instrument = command["instrument"]
            self.positions[instrument] = self.positions.get(instrument, ZERO) + signed
            self.cash -= signed * Decimal(command["price"]) + Decimal(command["fee"])

    def _fund(self, capital: Decimal, at: datetime) -> None:
        """A flat book takes the session's capital; a book with exposure keeps its cash."""
        flat = all(q == 0 for q in self.positions.values())
        if flat:
            self.cash = capital
            self.high_water_mark = capital
            self.day_start_nav = capital
            self.day = at.date().isoformat()

    def _reduce_open(self, order_id: str, quantity: Decimal) -> None:
        order = self.open_orders.get(order_id)
        if order is None:
            return
        remaining = order.remaining - quantity
        if remaining <= 0:
            del self.open_orders[order_id]
        else:
            self.open_orders[order_id] = OpenOrder(
                order.instrument, order.side, remaining, order.price, order.increasing
            )

    def _remember_order(self, at: datetime, intent: str) -> None:
        keep = max(self.limits.order_rate_window_seconds, self.limits.duplicate_window_seconds)
        since = at - timedelta(seconds=keep)
        self.recent_orders = [(t, d) for t, d in self.recent_orders if t > since]
        self.recent_orders.append((at, intent))

    @event("CommandRejected")
    def _rejected(
        self,
        command_type: str,
        target_id: UUID,
        command_digest: str,
        guard: str,
        observed: str,
        limit: str,
        reason: str,
        at: datetime,
    ) -> None:
        self.rejected_count += 1

    # --- observations ------------------------------------------------------------------
    def observe_mark(self, instrument: str, price: Decimal, at: datetime) -> None:
        """Marks drive NAV; crossing the daily-loss or drawdown limit changes trading state."""
        price = to_decimal(price, "price")
        if price <= 0:
            raise InvalidCommand(f"mark price must be positive, got {price}")
        self.trigger_event(self.MarkObserved, instrument=instrument, price=price, at=at)
        nav = self.nav()
        if nav is None:
            return
        if self.day_start_nav > 0 and self.kill_state != HALTED:
            loss = (self.day_start_nav - nav) / self.day_start_nav
            if loss > self.limits.daily_loss:
                self.engage_kill_switch(
                    reason=f"daily loss {loss:.6f} > {self.limits.daily_loss}",
                    by="riskdesk",
                    at=at,
                )
                return
        if self.high_water_mark > 0 and self.kill_state == ACTIVE:
            drawdown = 1 - nav / self.high_water_mark
            if drawdown > self.limits.max_drawdown:
                self._reducing(
                    reason=f"drawdown {drawdown:.6f} > {self.limits.max_drawdown}", at=at
                )

    class MarkObserved(AISAggregate.Event):
        """Explicit, not @event, like CommandApproved: the desk's most frequent event (one
        per instrument per bar) skips the decorator's argument binding, live and on replay.
        """

        instrument: str
        price: Decimal
        at: datetime

        def apply(self, aggregate: RiskDesk) -> None:
            aggregate._book_mark(self.instrument, self.price, self.at)

    def _book_mark(self, instrument: str, price: Decimal, at: datetime) -> None:
        day = at.date().isoformat()
        if self.day != day:
            nav = self.nav()
            if nav is not None and self.day is not None:
                self.day_start_nav = nav
            self.day = day
        self.marks[instrument] = Mark(price, at)
        nav = self.nav()
        if nav is not None and nav > self.high_water_mark:
            self.high_water_mark = nav

    # --- kill switch, limits, keys ------------------------------------------------------
    def engage_kill_switch(self, reason: str, by: str, at: datetime) -> bool:
        """HALTED until an operator resets it; returns False when it was already engaged."""
        if not reason.strip() or not by.strip():
            raise InvalidCommand("engaging the kill switch needs a reason and who asked")
        check_text(reason, "reason")
        check_text(by, "by")
        if self.kill_state == HALTED:
            return False
        self._kill_engaged(reason=reason, by=by, at=at)
        return True

    @event("KillSwitchEngaged")
    def _kill_engaged(self, reason: str, by: str, at: datetime) -> None:
        self.kill_state = HALTED
        self.kill_reason = reason

    @event("ReducingEntered")
    def _reducing(self, reason: str, at: datetime) -> None:
        self.kill_state = REDUCING
        self.kill_reason = reason

    def reset_kill_switch(self, reason: str, by: str, at: datetime) -> None:
        if not reason.strip() or not by.strip():
            raise InvalidCommand("resetting the kill switch needs an operator and a reason")
        check_text(reason, "reason")
        check_text(by, "by")
        if self.kill_state == ACTIVE:
            raise IllegalTransition("kill switch is not engaged")
        self._kill_reset(reason=reason, by=by, at=at)

    @event("KillSwitchReset")
    def _kill_reset(self, reason: str, by: str, at: datetime) -> None:
        self.kill_state = ACTIVE
        self.kill_reason = None
        nav = self.nav()
        if nav is not None:  # a reset starts a fresh drawdown and daily-loss reference
            self.high_water_mark = nav
            self.day_start_nav = nav

    def change_limits(self, limits: RiskLimits, by: str, reason: str) -> None:
        if limits != self.limits:
            self._limits_changed(limits=limits.to_dict(), by=by, reason=reason)

    @event("LimitsChanged")
    def _limits_changed(self, limits: dict[str, Any], by: str, reason: str) -> None:
        self.limits = RiskLimits.from_dict(limits)

    def activate_key(self, key_id: str) -> None:
        if key_id != self.key_id:
            self._key_activated(key_id=key_id)

    @event("KeyActivated")
    def _key_activated(self, key_id: str) -> None:
        self.key_id = key_id
