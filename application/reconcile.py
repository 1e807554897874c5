"""Reconciliation as a use case: snapshot the venue, record it, judge it, act on it.

The judging is the reconciliation projection's (a pure function of the log, so replays
agree); acting is here: orders missing at the venue are resolved by lookup, orders we
canceled but the venue still has are canceled there, orders we never placed are flagged
(and canceled if configured), and a BREAK raises an alert and engages the kill switch.

The snapshot is taken between two fill polls and retaken when fills arrived meanwhile,
so a fill in flight does not show up as a false difference.

Under a policy that expects the baseline (shadow) the account is only read: nothing is
canceled there, and `run(rebase=True)` records the snapshot later ones are judged against.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from application.errors import ConcurrencyConflict
from application.order_router import OrderRouter
from application.ports import (
    AccountSnapshot,
    Alert,
    AlertSink,
    ExchangeGateway,
    ExchangeUnavailable,
    ReconciliationItem,
    ReconciliationReport,
    ReconciliationView,
)
from application.trading import TradingApp
from domain.base import event_clock
from domain.client_order_id import order_id_from_client_id
from domain.exchange_account import ExchangeAccount, exchange_account_id
from domain.reconciliation import (
    APPLY_FILLS,
    BREAK,
    CANCEL_AT_VENUE,
    DRIFT,
    EXPECT_BASELINE,
    LOOKUP,
    UNKNOWN_ORDER,
    Policy,
    ReconciliationPolicy,
    policy_id,
)


@dataclass(frozen=True)
class ReconcileOutcome:
    report: ReconciliationReport
    actions: tuple[str, ...]  # what was done about order items, one line each
    kill_switch: bool  # engaged by this run


class ReconcileService:
    def __init__(
        self,
        app: TradingApp,
        gateway: ExchangeGateway,
        view: ReconciliationView,
        alerts: AlertSink,
        policy: Policy,
        *,
        router: OrderRouter | None = None,
        cancel_unknown_orders: bool = False,
        attempts: int = 3,
    ) -> None:
        self.app = app
        self.gateway = gateway
        self.view = view
        self.alerts = alerts
        self.policy = policy
        self.router = router
        self.cancel_unknown_orders = cancel_unknown_orders
        self.attempts = attempts

    @property
    def venue(self) -> str:
        return self.gateway.venue

    # --- use cases -------------------------------------------------------------------------
    def startup(self) -> ReconcileOutcome:
        """Before the loop starts: resolve every possibly-live order, then reconcile."""
        if self.router is not None:
            self.router.resolve_open()
        return self.run()

    def run(self, *, rebase: bool = False) -> ReconcileOutcome:
        """One snapshot, recorded and judged; order items acted on, then judged again.

        `rebase`: under a baseline policy, this snapshot becomes the baseline (a shadow
        session's start: whatever the real account holds then is what it should keep)."""
        self.record_policy()
        report, snapshot = self._judge(rebase and self.policy.expect == EXPECT_BASELINE)
        actions = list(self._act(report, snapshot))
        if actions:
            report, snapshot = self._judge()
        engaged = False
        labels = {"venue": self.venue, "snapshot": str(report.snapshot)}
        if report.status == BREAK:
            reason = self._reason(report)
            self.alerts.send(Alert("ReconciliationBreak", "critical", reason, labels))
            engaged = self.app.desk().kill_state != "HALTED"
            if self.router is not None:
                self.router.halt(reason, by="reconciliation")
            else:
                self.app.engage_kill_switch(reason=reason, by="reconciliation")
        elif report.status == DRIFT:
            self.alerts.send(Alert("ReconciliationDrift", "warning", self._reason(report), labels))
        return ReconcileOutcome(report, tuple(actions), engaged)

    def record_policy(self) -> bool:
        """Record the tolerances in the log when they differ from the recorded ones."""
        aggregate_id = policy_id(self.app.account_id, self.venue)
        for _ in range(10):
            with event_clock(self.app.clock):
                try:
                    policy: ReconciliationPolicy = self.app.repository.get(aggregate_id)
                    changed = policy.change(self.policy)
                except AggregateNotFoundError:
                    policy = ReconciliationPolicy(
                        id=aggregate_id,
                        account_id=self.app.account_id,
                        venue=self.venue,
                        policy=self.policy.to_dict(),
                    )
                    changed = True
            if not changed:
                return False
            try:
                self.app.save(policy)
            except IntegrityError:
                continue
            return True
        raise ConcurrencyConflict("reconciliation policy: gave up after 10 conflicting writes")

    # --- steps -----------------------------------------------------------------------------
    def _judge(self, baseline: bool = False) -> tuple[ReconciliationReport, AccountSnapshot]:
        snapshot = self._stable_snapshot()
        self.app.record_exchange_snapshot(
            self.venue,
            balances=snapshot.balances,
            positions=snapshot.positions,
            open_orders=snapshot.open_orders,
            baseline=baseline,
        )
        account: ExchangeAccount = self.app.repository.get(
            exchange_account_id(self.app.account_id, self.venue)
        )
        report = self.view.report(self.venue, account.version)
        if report is None:
            raise LookupError(f"no reconciliation for {self.venue} snapshot {account.version}")
        return report, snapshot

    def _stable_snapshot(self) -> AccountSnapshot:
        """Fills first, then the snapshot; taken again when a fill arrived in between."""
        if self.router is not None:
            self.router.poll_fills()
        snapshot = self.gateway.snapshot()
        for _ in range(self.attempts - 1):
            if self.router is None or self.router.poll_fills().applied == 0:
                break
            snapshot = self.gateway.snapshot()
        return snapshot

    def _act(self, report: ReconciliationReport, snapshot: AccountSnapshot) -> Iterator[str]:
        at_venue = {
            o["client_order_id"] or f"venue:{o['exchange_order_id']}": o
            for o in snapshot.open_orders
        }
        fills_polled = False
        for item in report.items:
            if item.action == LOOKUP and self.router is not None:
                order_id = order_id_from_client_id(item.item)
                if order_id is None:
                    yield f"cannot look up {item.item}: not derived from an Order id"
                else:
                    yield f"looked up {item.item}: {self.router.resolve(order_id)}"
            elif item.action == CANCEL_AT_VENUE:
                yield self._cancel(item, at_venue.get(item.item), "canceled here")
            elif item.action == UNKNOWN_ORDER:
                self.alerts.send(
                    Alert(
                        "UnknownVenueOrder",
                        "warning",
                        f"{self.venue}: open order {item.item} was not placed by this system",
                        {"venue": self.venue, "order": item.item},
                    )
                )
                if self.cancel_unknown_orders and self.policy.expect != EXPECT_BASELINE:
                    yield self._cancel(item, at_venue.get(item.item), "not ours")
            elif item.action == APPLY_FILLS and self.router is not None and not fills_polled:
                fills_polled = True
                yield f"applied {self.router.poll_fills().applied} fills"

    def _cancel(self, item: ReconciliationItem, order: dict[str, Any] | None, why: str) -> str:
        if order is None or not order["client_order_id"]:
            return f"cannot cancel {item.item}: no client order id in the snapshot"
        try:
            ended = self.gateway.cancel(order["client_order_id"], order["instrument"])
        except (ExchangeUnavailable, ValueError) as exc:
            return f"cancel {item.item} ({why}) failed: {exc}"
        return f"canceled {item.item} at {self.venue} ({why}): {ended.status if ended else 'gone'}"

    def _reason(self, report: ReconciliationReport) -> str:
        worst_items = [i for i in report.items if i.status == report.status][:3]
        detail = "; ".join(f"{i.kind} {i.item}: {i.note}" for i in worst_items)
        return (
            f"reconciliation {report.status} at {self.venue} snapshot {report.snapshot}: {detail}"[
                :500
            ]
        )
