"""Order routing: an approved Order to the venue exactly once, and its fills back once.

The rules that make a submission exactly-once:
1. The client order id is derived from the Order id (`domain.client_order_id`), so every
   attempt for one Order carries the same id and the venue can refuse a duplicate.
2. `Submitted` is on disk before the request leaves (write-ahead): an Order still
   PENDING_NEW was never sent; a SUBMITTED one may have been.
3. A submission is sent at most once. When its outcome is unknown (timeout, reset, 5xx),
   the order is looked up by client order id before anything else happens to it. A lookup
   that does not find it is trusted only after `unknown_outcome` has passed since it was
   sent — longer than the venue's recvWindow, after which the lost request can no longer
   be accepted — and the Order is then rejected, never resent.

Fills are polled and applied once per venue trade id (`TradingApp.record_fill` is
idempotent). A fill for an order this system did not place is recorded as an
`UnknownFill` and engages the kill switch; orders the kill switch cancels here are then
canceled at the venue too.

The trading loop calls `submit` after `PlaceOrder`, `poll_fills` every step and
`cancel` for what it wants gone; `resolve_open` runs at startup.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from application.errors import ConcurrencyConflict, NotFound, RiskRejected
from application.ports import (
    Alert,
    AlertSink,
    ExchangeFill,
    ExchangeGateway,
    ExchangeOrder,
    ExchangeUnavailable,
    OrderRequest,
    SubmissionUnknown,
)
from application.trading import TradingApp
from domain.base import event_clock
from domain.client_order_id import client_order_id, order_id_from_client_id
from domain.commands import (
    AcknowledgeOrder,
    CancelOrder,
    ExpireOrder,
    RejectOrder,
    SubmitOrder,
)
from domain.errors import ApprovalError, IllegalTransition
from domain.order import CANCELED, PENDING_NEW, REJECTED, SUBMITTED, TERMINAL, Order
from domain.unknown_fill import UnknownFill, unknown_fill_id

KILL_SWITCH_CANCEL = "kill switch engaged"  # TradingApp's reason for its own cancels


@dataclass(frozen=True)
class FillReport:
    applied: int = 0
    duplicates: int = 0
    unknown: int = 0


class OrderRouter:
    def __init__(
        self,
        app: TradingApp,
        gateway: ExchangeGateway,
        alerts: AlertSink,
        *,
        unknown_outcome: timedelta = timedelta(seconds=15),
        fills_since: datetime | None = None,
    ) -> None:
        self.app = app
        self.gateway = gateway
        self.alerts = alerts
        self.unknown_outcome = unknown_outcome
        self.fills_since = fills_since

    # --- submission ----------------------------------------------------------------------
    def submit(self, order_id: UUID) -> str:
        """Send a PENDING_NEW order; a SUBMITTED one is looked up, never sent again."""
        order = self.app.order(order_id)
        if order.status == SUBMITTED:
            return self.resolve(order_id)
        if order.status != PENDING_NEW:
            return str(order.status)
        command = SubmitOrder(order_id=order_id, client_order_id=client_order_id(order_id))
        try:
            try:
                token = self.app.approve(command)
            except RiskRejected as refused:
                self.app.execute(RejectOrder(order_id=order_id, reason=f"held back: {refused}"))
                return REJECTED
            self.app.apply(command, token)  # SUBMITTED is on disk before the request leaves
        except (IllegalTransition, ConcurrencyConflict, ApprovalError):
            # Another process ended it since we read it (the kill switch cancels every
            # open order), so the check or the token refused it: nothing is sent, and
            # what it ended as is the outcome.
            ended = self.app.order(order_id).status
            if ended not in TERMINAL:
                raise
            return str(ended)
        # The second check in order management, before anything leaves the building.
        self.app.verifier.verify(token, command, token.target_version)
        order = self.app.order(order_id)
        request = OrderRequest(
            client_order_id=command.client_order_id,
            instrument=order.instrument,
            side=order.side,
            order_type=order.order_type,
            quantity=order.quantity,
            limit_price=order.limit_price,
        )
        try:
            answer = self.gateway.submit(request)
        except ExchangeUnavailable as down:  # refused before sending: nothing is out there
            self.app.execute(RejectOrder(order_id=order_id, reason=f"venue unavailable: {down}"))
            return REJECTED
        except SubmissionUnknown:
            return self.resolve(order_id)
        return self._settle(order_id, answer)

    def resolve(self, order_id: UUID) -> str:
        """Bring a sent order in line with the venue, looking it up by client order id."""
        order = self.app.order(order_id)
        if order.status == PENDING_NEW or order.status in TERMINAL:
            return str(order.status)
        assert order.client_order_id is not None
        try:
            found = self.gateway.lookup(order.client_order_id, order.instrument)
        except ExchangeUnavailable:
            return str(order.status)  # still unknown; asked again later
        if found is not None:
            return self._settle(order_id, found)
        if order.status != SUBMITTED:
            self.alerts.send(
                Alert(
                    "OrderMissingAtVenue",
                    "warning",
                    f"order {order.client_order_id} is {order.status} here, unknown at "
                    f"{self.gateway.venue}",
                    {"venue": self.gateway.venue, "order": str(order_id)},
                )
            )
            return str(order.status)
        sent_at: datetime = order.modified_on  # the Submitted event's time
        if self.app.clock() - sent_at < self.unknown_outcome:
            return SUBMITTED  # the lost request could still arrive: not yet decided
        self.app.execute(
            RejectOrder(
                order_id=order_id,
                reason=f"not at the venue {self.unknown_outcome} after a submission "
                "whose outcome was unknown",
            )
        )
        return REJECTED

    def resolve_open(self) -> dict[UUID, str]:
        """At startup: every order that may be live, looked up at the venue."""
        return {order_id: self.resolve(order_id) for order_id in self.live_orders()}

    def live_orders(self) -> list[UUID]:
        """Orders the desk holds open (approved, not ended), oldest id first."""
        return [UUID(i) for i in sorted(self.app.desk().open_orders)]

    def _settle(self, order_id: UUID, found: ExchangeOrder, reason: str | None = None) -> str:
        """Record what the venue says: rejected, acknowledged, fills, then its ending."""
        order = self.app.order(order_id)
        if found.status == "rejected":
            if order.status in (PENDING_NEW, SUBMITTED):
                self.app.execute(
                    RejectOrder(order_id=order_id, reason=found.reason or "rejected by the venue")
                )
            return str(self.app.order(order_id).status)
        if order.status == SUBMITTED:
            self._acknowledge(order, found.exchange_order_id)
        if found.filled > order.filled_quantity:
            self.poll_fills()
        order = self.app.order(order_id)
        ended = found.status in ("canceled", "expired")
        if ended and order.status not in TERMINAL and order.filled_quantity >= found.filled:
            text = reason or f"{found.status} at {self.gateway.venue}"
            if found.status == "canceled":
                self.app.execute(CancelOrder(order_id=order_id, reason=text))
            else:
                self.app.execute(ExpireOrder(order_id=order_id, reason=text))
        return str(self.app.order(order_id).status)

    def _acknowledge(self, order: Order, exchange_order_id: str) -> None:
        self.app.execute(
            AcknowledgeOrder(order_id=order.id, exchange_order_id=exchange_order_id or "unknown")
        )

    # --- cancels ---------------------------------------------------------------------------
    def cancel(self, order_id: UUID, reason: str) -> str:
        """Cancel at the venue first, apply fills that raced it, then end the Order."""
        order = self.app.order(order_id)
        if order.status == PENDING_NEW:
            self.app.execute(CancelOrder(order_id=order_id, reason=reason))
            return CANCELED
        if order.status in TERMINAL:
            if order.status == CANCELED:
                self._cancel_at_venue(order)  # ended here, make sure it ended there
            return str(order.status)
        assert order.client_order_id is not None
        try:
            ended = self.gateway.cancel(order.client_order_id, order.instrument)
        except ExchangeUnavailable:
            return str(order.status)  # try again later; the order stays open here
        if ended is None:
            return self.resolve(order_id)
        return self._settle(order_id, ended, reason)

    def _cancel_at_venue(self, order: Order) -> bool:
        if order.client_order_id is None:
            return True
        try:
            self.gateway.cancel(order.client_order_id, order.instrument)
        except ExchangeUnavailable:
            return False
        return True

    def cancel_halted(self, order_ids: list[UUID]) -> list[UUID]:
        """After the kill switch canceled these here: cancel them at the venue too."""
        done = []
        for order_id in order_ids:
            order = self.app.order(order_id)
            if order.status == CANCELED and self._cancel_at_venue(order):
                done.append(order_id)
        return done

    def halt(self, reason: str, by: str) -> None:
        """Engage the kill switch (cancels here) and cancel the same orders at the venue."""
        live = self.live_orders()
        self.app.engage_kill_switch(reason=reason, by=by)
        self.cancel_halted(live)

    # --- fills -----------------------------------------------------------------------------
    def poll_fills(self) -> FillReport:
        """Apply every new venue fill once; unknown ones are recorded and halt trading."""
        live = self.live_orders()
        fills = self.gateway.fills(self.fills_since)
        applied = duplicates = unknown = 0
        halted = False
        for fill in fills:
            order = self._order_of(fill)
            if order is None:
                unknown += self._unknown_fill(fill)
                halted = True
                continue
            if fill.trade_id in order.trade_ids:
                duplicates += 1
                continue
            if order.status == SUBMITTED:
                self._acknowledge(order, fill.exchange_order_id)
            self.app.record_fill(
                order.id,
                trade_id=fill.trade_id,
                quantity=fill.quantity,
                price=fill.price,
                fee=fill.fee,
                filled_at=fill.at,
            )
            applied += 1
        if fills:
            self.fills_since = max(f.at for f in fills)
        if halted or self.app.desk().kill_state == "HALTED":
            self.cancel_halted(live)
        return FillReport(applied, duplicates, unknown)

    def _order_of(self, fill: ExchangeFill) -> Order | None:
        order_id = order_id_from_client_id(fill.client_order_id)
        if order_id is None:
            return None
        try:
            return self.app.order(order_id)
        except NotFound:
            return None

    def _unknown_fill(self, fill: ExchangeFill) -> int:
        """Record it once (one aggregate per trade id) and engage the kill switch."""
        record_id = unknown_fill_id(self.app.account_id, self.gateway.venue, fill.trade_id)
        try:
            self.app.repository.get(record_id)
            return 0  # recorded before
        except AggregateNotFoundError:
            pass
        who = fill.client_order_id or f"venue order {fill.exchange_order_id}"
        reason = f"fill {fill.trade_id} for an order this system did not place ({who})"
        with event_clock(self.app.clock):
            record = UnknownFill(
                id=record_id,
                account_id=self.app.account_id,
                venue=self.gateway.venue,
                trade_id=fill.trade_id,
                client_order_id=fill.client_order_id,
                exchange_order_id=fill.exchange_order_id,
                instrument=fill.instrument,
                side=fill.side,
                quantity=fill.quantity,
                price=fill.price,
                fee=fill.fee,
                filled_at=fill.at,
                reason=reason,
            )
        try:
            self.app.save(record)
        except IntegrityError:
            return 0  # another process recorded it first
        self.app.engage_kill_switch(reason=reason, by="order-router")
        self.alerts.send(
            Alert(
                "UnknownFill",
                "critical",
                f"{self.gateway.venue}: {reason}; kill switch engaged",
                {"venue": self.gateway.venue, "trade": fill.trade_id},
            )
        )
        return 1
