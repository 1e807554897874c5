"""TradingApp: runs every command end to end — RiskDesk approval, target command, save.

The desk's decision and the target's new events are saved in one `Application.save`
call, which the eventsourcing recorders write in a single database transaction: either
both the approval and the state change are on disk, or neither is.

Each command's outcome is logged ("command approved" / "command rejected", with the
log positions of what was saved) once it is on disk, through stdlib logging only: the
process decides where lines go and binds the request id that ties them to a call.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, DomainEventProtocol, MutableOrImmutableAggregate
from eventsourcing.persistence import IntegrityError, Recording

from application.desk_snapshots import snapshot_saved_desk
from application.errors import ConcurrencyConflict, NotFound
from application.ports import Clock, IdFactory
from application.unit_outcome import UnitOutcome, positions
from domain.approval import ApprovalToken, KeyRing, Verifier
from domain.base import event_clock
from domain.commands import (
    ApplyFill,
    CancelOrder,
    Command,
    EndSession,
    HaltSession,
    PlaceOrder,
    RecordFill,
    ResumeSession,
    StartSession,
    desk_id,
)
from domain.errors import DuplicateFill, IllegalTransition, InvalidCommand
from domain.exchange_account import ExchangeAccount, exchange_account_id
from domain.guards import Rejection
from domain.limits import RiskLimits
from domain.order import Order
from domain.position import Position
from domain.risk_desk import RiskDesk
from domain.session import TradingSession
from domain.values import InstrumentCatalog, Side

T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)
_SESSION_COMMANDS = (StartSession, HaltSession, ResumeSession, EndSession)
_CONFLICT_RETRIES = 30
log = logging.getLogger("ais.trading")


def _back_off(attempt: int) -> None:
    """Capped exponential backoff with jitter, so racing writers stop colliding in step."""
    time.sleep(random.uniform(0, min(0.001 * 2**attempt, 0.05)))


class TradingApp(Application[UUID]):
    """One account's write side. Time, ids and keys are injected; nothing reads the wall."""

    name = "ais"
    # A snapshot store (its own table, not notifications); desk_snapshots says when.
    is_snapshotting_enabled = True

    def __init__(
        self,
        *,
        account_id: str,
        limits: RiskLimits,
        catalog: InstrumentCatalog,
        keys: KeyRing,
        clock: Clock,
        ids: IdFactory,
        env: dict[str, str],
    ) -> None:
        super().__init__(env)
        self.account_id = account_id
        self.catalog = catalog
        self.keys = keys
        self.clock = clock
        self.ids = ids
        self.verifier = Verifier(keys, clock)
        self.desk_id = desk_id(account_id)
        self.conflicts = 0  # writes lost to a concurrent writer and retried
        self._open_desk(limits)

    # --- setup ---------------------------------------------------------------------------
    def _open_desk(self, limits: RiskLimits) -> None:
        """Create the desk once; later starts record changed limits or a rotated key."""

        def unit() -> None:
            try:
                desk = self.desk()
            except NotFound:
                desk = RiskDesk(
                    id=self.desk_id,
                    account_id=self.account_id,
                    limits=limits.to_dict(),
                    key_id=self.keys.active_key_id,
                )
            else:
                desk.change_limits(limits, by="config", reason="limits from configuration")
                if self.keys.active_key_id is not None:
                    desk.activate_key(self.keys.active_key_id)
            if desk.pending_events:
                self.save(desk)

        self._retrying(unit)

    def desk(self) -> RiskDesk:
        return self._get(self.desk_id, RiskDesk)

    def order(self, order_id: UUID) -> Order:
        return self._get(order_id, Order)

    def position(self, position_id: UUID) -> Position:
        return self._get(position_id, Position)

    def session(self, session_id: UUID) -> TradingSession:
        return self._get(session_id, TradingSession)

    def save(
        self,
        *objs: MutableOrImmutableAggregate[UUID] | DomainEventProtocol[UUID] | None,
        **kwargs: Any,
    ) -> list[Recording[UUID]]:
        """Application.save, plus a desk snapshot when due and a debug line naming what
        was written where.
        """
        recordings = super().save(*objs, **kwargs)
        snapshot_saved_desk(self.snapshots, objs, recordings)
        if recordings and log.isEnabledFor(logging.DEBUG):  # backtests save in a hot loop
            log.debug(
                "events saved",
                extra={
                    "account_id": self.account_id,
                    "positions": positions(recordings),
                    "events": [type(r.domain_event).__qualname__ for r in recordings],
                },
            )
        return recordings

    def _get(self, aggregate_id: UUID, kind: type[A]) -> A:
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFound(f"no {kind.__name__} {aggregate_id}") from None
        if not isinstance(aggregate, kind):
            raise NotFound(f"{aggregate_id} is not a {kind.__name__}")
        return aggregate

    # --- commands --------------------------------------------------------------------------
    def execute(self, *commands: Command) -> list[ApprovalToken]:
        """Approve and apply the commands as one unit; retried when another writer raced us."""
        outcomes, saved = self.execute_group([commands])
        return outcomes[0].settle(saved)

    def execute_group(
        self, units: Sequence[Sequence[Command]]
    ) -> tuple[list[UnitOutcome], list[Recording[UUID]]]:
        """Decide independent units in order against one desk and save them in ONE
        transaction (group commit), retried from fresh state when another writer raced us.

        Each unit is all or nothing, as `execute` promises: a unit that fails after one of
        its commands was approved is taken out and the group decided again, so no approval
        reaches the disk without its change. Nothing is logged here: each caller settles its
        outcome in its own context, which carries its request id.
        """

        def unit() -> tuple[list[UnitOutcome], list[Recording[UUID]]]:
            pinned: dict[int, UnitOutcome] = {}  # decided against this attempt's state
            while True:
                decided = self._decide_group(units, pinned)
                if decided is not None:
                    desk, targets, outcomes = decided
                    objs = [desk, *targets]
                    if not any(obj.pending_events for obj in objs):
                        return outcomes, []
                    return outcomes, self.save(*objs)

        return self._retrying(unit)

    def _retrying(self, unit: Callable[[], T]) -> T:
        """Run a load-decide-save unit again from fresh state after a version conflict."""
        for attempt in range(_CONFLICT_RETRIES):
            try:
                with event_clock(self.clock):
                    return unit()
            except IntegrityError:
                self.conflicts += 1
                _back_off(attempt)
        raise ConcurrencyConflict(f"gave up after {_CONFLICT_RETRIES} conflicting writes")

    def _decide_group(
        self, units: Sequence[Sequence[Command]], pinned: dict[int, UnitOutcome]
    ) -> tuple[RiskDesk, list[Aggregate], list[UnitOutcome]] | None:
        """One pass over the group; None after pinning a unit that failed half-way."""
        desk = self.desk()
        targets: dict[UUID, Aggregate | None] = {}
        outcomes: list[UnitOutcome] = []
        for index, commands in enumerate(units):
            if index in pinned:
                outcomes.append(pinned[index].record_on(desk, self.clock()))
                continue
            outcome = self._decide_unit(desk, targets, commands)
            if outcome.dirty:
                pinned[index] = outcome
                return None
            outcomes.append(outcome)
        return desk, [t for t in targets.values() if t is not None], outcomes

    def _decide_unit(
        self, desk: RiskDesk, targets: dict[UUID, Aggregate | None], commands: Sequence[Command]
    ) -> UnitOutcome:
        tokens: list[ApprovalToken] = []
        for command in commands:
            asked = False  # has the desk recorded a decision on this command?
            try:
                if command.target_id not in targets:
                    targets[command.target_id] = self._load_target(command)
                target = targets[command.target_id]
                self._validate(command, target)
                asked = True
                decision = self._ask_desk(desk, command, target)
                if isinstance(decision, Rejection):
                    # Recorded on the desk; with approvals before it, the unit must go.
                    return UnitOutcome.rejected_by_desk(command, decision, dirty=bool(tokens))
                targets[command.target_id] = self._apply(command, decision, target)
            except Exception as exc:  # the caller gets it, as from a plain call
                # Failing before the desk was asked changes nothing; after, the desk holds
                # an approval whose change will not happen.
                return UnitOutcome(error=exc, dirty=asked or bool(tokens))
            tokens.append(decision)
        return UnitOutcome(tokens=tokens)

    def approve(self, command: Command) -> ApprovalToken:
        """First half of the two-step path: the approval is on disk before any change."""

        def decide_and_save() -> tuple[ApprovalToken | Rejection, list[Recording[UUID]]]:
            desk = self.desk()
            decision = self._decide(desk, command, self._load_target(command))
            return decision, self.save(desk)

        decision, saved = self._retrying(decide_and_save)
        if isinstance(decision, Rejection):
            UnitOutcome.rejected_by_desk(command, decision, dirty=False).settle(saved)
        assert isinstance(decision, ApprovalToken)
        return UnitOutcome(tokens=[decision]).settle(saved)[0]

    def apply(self, command: Command, token: ApprovalToken) -> None:
        """Second half: apply a command with a token the desk issued; a token works once."""
        with event_clock(self.clock):
            target = self._apply(command, token, self._load_target(command))
        try:
            self.save(target)
        except IntegrityError:
            raise ConcurrencyConflict(
                f"{command.command_type} on {command.target_id}: another writer changed it "
                "first; the approval was for the previous version"
            ) from None

    def _decide(
        self, desk: RiskDesk, command: Command, target: Aggregate | None
    ) -> ApprovalToken | Rejection:
        self._validate(command, target)
        return self._ask_desk(desk, command, target)

    def _ask_desk(
        self, desk: RiskDesk, command: Command, target: Aggregate | None
    ) -> ApprovalToken | Rejection:
        return desk.approve(
            command,
            target_version=None if target is None else target.version,
            approval_id=self.ids(),
            now=self.clock(),
            keys=self.keys,
        )

    def _validate(self, command: Command, target: Aggregate | None) -> None:
        """Bad input and illegal transitions are refused before the desk is asked."""
        if isinstance(command, PlaceOrder):
            self.catalog.get(command.instrument).check_order(command.quantity, command.limit_price)
        if isinstance(command, ApplyFill):
            self.catalog.get(command.instrument)
            if command.account_id != self.account_id:
                raise InvalidCommand(f"fill is for account {command.account_id!r}")
        if command.creates and target is not None:
            raise InvalidCommand(f"{command.target_id} already exists")
        if target is None and not (command.creates or isinstance(command, ApplyFill)):
            raise NotFound(f"{command.command_type}: no target {command.target_id}")
        if isinstance(target, Order | TradingSession | Position):
            target.check(command)  # type: ignore[arg-type]

    def _load_target(self, command: Command) -> Aggregate | None:
        kind: type[Aggregate]
        if isinstance(command, _SESSION_COMMANDS):
            kind = TradingSession
        elif isinstance(command, ApplyFill):
            kind = Position
        else:
            kind = Order
        try:
            target: Aggregate = self._get(command.target_id, kind)
        except NotFound:
            return None
        return target

    def _apply(self, command: Command, token: ApprovalToken, target: Aggregate | None) -> Aggregate:
        if target is None:
            if isinstance(command, PlaceOrder):
                return Order.place(command, token, self.verifier)
            if isinstance(command, StartSession):
                return TradingSession.start(command, token, self.verifier)
            if isinstance(command, ApplyFill):
                return Position.open(command, token, self.verifier)
            raise NotFound(f"{command.command_type}: no target {command.target_id}")
        if isinstance(target, Position):
            assert isinstance(command, ApplyFill)
            target.apply(command, token, self.verifier)
        else:
            assert isinstance(target, Order | TradingSession)
            target.execute(command, token, self.verifier)
        return target

    # --- composite use cases ----------------------------------------------------------------
    def record_fill(
        self,
        order_id: UUID,
        *,
        trade_id: str,
        quantity: Decimal,
        price: Decimal,
        fee: Decimal,
        filled_at: datetime,
    ) -> bool:
        """Apply an exchange fill to its Order and Position once; False if already applied."""
        order = self.order(order_id)
        if trade_id in order.trade_ids:
            return False
        facts = (trade_id, quantity, price, fee, filled_at)
        try:
            self.execute(
                RecordFill(order_id, *facts),
                ApplyFill(self.account_id, order.instrument, Side(order.side), order_id, *facts),
            )
        except DuplicateFill:  # another writer applied it while we raced: retried, found
            return False
        self._cancel_all_if_halted()
        return True

    def observe_mark(self, instrument: str, price: Decimal) -> None:
        self.observe_marks({instrument: price})

    def observe_marks(self, prices: dict[str, Decimal]) -> None:
        """Record the prices seen now, in one save; a breach may halt and cancel."""
        for instrument in prices:
            self.catalog.get(instrument)
        now = self.clock()

        def observe(desk: RiskDesk) -> None:
            for instrument, price in sorted(prices.items()):
                desk.observe_mark(instrument, price, now)

        desk = self._on_desk(observe)
        if desk.kill_state == "HALTED":
            self._cancel_all_if_halted()

    def engage_kill_switch(self, reason: str, by: str) -> None:
        """Halt, then cancel every open order through approved commands."""
        now = self.clock()
        self._on_desk(lambda desk: desk.engage_kill_switch(reason=reason, by=by, at=now))
        log.info("kill switch engaged", extra={"account_id": self.account_id, "by": by})
        self._cancel_all_if_halted()

    def reset_kill_switch(self, reason: str, by: str) -> None:
        now = self.clock()
        self._on_desk(lambda desk: desk.reset_kill_switch(reason=reason, by=by, at=now))
        log.info("kill switch reset", extra={"account_id": self.account_id, "by": by})

    def _on_desk(self, change: Callable[[RiskDesk], object]) -> RiskDesk:
        def unit() -> RiskDesk:
            desk = self.desk()
            change(desk)
            self.save(desk)
            return desk

        return self._retrying(unit)

    def _cancel_all_if_halted(self) -> None:
        desk = self.desk()
        if desk.kill_state != "HALTED":
            return
        for order_id in sorted(desk.open_orders):
            order = self.order(UUID(order_id))
            if order.status in ("PENDING_NEW", "SUBMITTED", "OPEN", "PARTIALLY_FILLED"):
                try:
                    self.execute(CancelOrder(order_id=order.id, reason="kill switch engaged"))
                except IllegalTransition:
                    # Ended since we read it, by another process (the loop canceling or
                    # filling it, or its own kill-switch sweep): nothing left to cancel.
                    continue

    def record_exchange_snapshot(
        self,
        venue: str,
        *,
        balances: dict[str, Any],
        positions: list[dict[str, Any]],
        open_orders: list[dict[str, Any]],
        baseline: bool = False,
    ) -> None:
        """`baseline`: later snapshots are judged against this one (a shadow session's start)."""
        account_id = exchange_account_id(self.account_id, venue)

        def unit() -> None:
            try:
                account = self._get(account_id, ExchangeAccount)
            except NotFound:
                account = ExchangeAccount(id=account_id, account_id=self.account_id, venue=venue)
            account.record_snapshot(
                taken_at=self.clock(),
                balances=balances,
                positions=positions,
                open_orders=open_orders,
                baseline=baseline,
            )
            self.save(account)

        self._retrying(unit)
