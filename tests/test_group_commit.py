"""Group commit: concurrent callers' units share transactions; each unit stays all or nothing."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from adapters.persistence import eventsourcing_env
from application.errors import RiskRejected
from application.group_commit import GroupCommitter
from application.trading import TradingApp
from domain.commands import PlaceOrder, SubmitOrder
from domain.errors import IllegalTransition
from domain.limits import RiskLimits
from domain.values import OrderType, Side
from tests.conftest import AppFactory, ReadModels, all_events, kinds, start_session
from tests.http_helpers import running_api

THREADS = 6
UNITS_PER_THREAD = 12


@pytest.fixture
def limits(limits: RiskLimits) -> RiskLimits:
    """Many small orders at one instant: the rate guard would refuse them, not the point."""
    return dataclasses.replace(limits, order_rate_limit=1_000_000)


def small_buy(app: TradingApp, session_id: UUID, n: int, quantity: str = "0.001") -> PlaceOrder:
    """50 USDT each; distinct prices so the duplicate guard sees different orders."""
    return PlaceOrder(
        order_id=app.ids(),
        session_id=session_id,
        instrument="BTC-USDT",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=Decimal(quantity),
        limit_price=Decimal(50000 - n),
    )


class GatedSave(TradingApp):
    """The first save waits at the gate, so the callers behind it queue up meanwhile."""

    gate: threading.Event
    held = 0  # units in the group waiting at the gate: one desk approval each

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        if not self.gate.is_set():
            self.held = len(objs[0].pending_events)  # the desk comes first
            assert self.gate.wait(timeout=30)
        return super().save(*objs, **kwargs)


def run_gated(committer: GroupCommitter, app: GatedSave, threads: list[threading.Thread]) -> None:
    """Start the callers; the first group waits at its save until every caller is either in
    it or queued, so all the others must share the next transaction."""
    for thread in threads:
        thread.start()
    give_up = time.monotonic() + 30
    while app.held + committer._queue.qsize() < len(threads) and time.monotonic() < give_up:
        time.sleep(0.01)
    app.gate.set()
    for thread in threads:
        thread.join(timeout=60)


def approvals_of(events: list[Any]) -> Counter[str]:
    return Counter(kinds(events))


def test_concurrent_callers_share_transactions_and_every_unit_lands(
    make_app: AppFactory,
) -> None:
    app = make_app()
    session_id = start_session(app)
    commands = [
        [small_buy(app, session_id, t * UNITS_PER_THREAD + i) for i in range(UNITS_PER_THREAD)]
        for t in range(THREADS)
    ]
    before = len(all_events(app))
    writer = make_app()
    writer.__class__ = GatedSave  # as tests/test_concurrency.py does: same store and options
    assert isinstance(writer, GatedSave)
    writer.gate = threading.Event()
    committer = GroupCommitter(writer, max_group=1000)
    tokens: list[Any] = []
    errors: list[BaseException] = []

    def caller(mine: list[PlaceOrder]) -> None:
        for command in mine:
            try:
                tokens.extend(committer.execute(command))
            except BaseException as exc:  # collected and asserted on
                errors.append(exc)

    run_gated(committer, writer, [threading.Thread(target=caller, args=(m,)) for m in commands])
    committer.close()

    total = THREADS * UNITS_PER_THREAD
    assert errors == []
    assert len(tokens) == total
    assert committer.units == total
    assert committer.groups < total  # at least one transaction carried several units
    assert writer.conflicts == 0  # one writer: no lost races on the desk's version
    new = approvals_of(all_events(app)[before:])
    assert new == {"RiskDesk.CommandApproved": total, "Order.Placed": total}
    for mine in commands:
        for command in mine:
            assert app.order(command.order_id).status == "PENDING_NEW"
    desk = app.desk()
    assert desk.version == writer.desk().version


def test_a_unit_failing_half_way_leaves_no_trace_and_spares_the_others(app: TradingApp) -> None:
    session_id = start_session(app)
    ok_first = small_buy(app, session_id, 1)
    doomed = small_buy(app, session_id, 2)
    ok_last = small_buy(app, session_id, 3)
    approved_then_refused = small_buy(app, session_id, 4)
    too_big = small_buy(app, session_id, 5, quantity="3")  # over the 2 BTC mandate
    before = len(all_events(app))

    outcomes, saved = app.execute_group(
        [
            [ok_first],
            # approved twice, then an illegal transition: the unit must vanish whole
            [
                doomed,
                SubmitOrder(order_id=doomed.order_id, client_order_id="c-2"),
                SubmitOrder(order_id=doomed.order_id, client_order_id="c-2b"),
            ],
            [ok_last],
            # approved, then refused by a guard: only the refusal stays
            [approved_then_refused, too_big],
        ]
    )

    assert [len(o.tokens) for o in outcomes] == [1, 0, 1, 0]
    assert isinstance(outcomes[1].error, IllegalTransition)
    assert isinstance(outcomes[3].error, RiskRejected)
    assert outcomes[3].error.rejection.guard == "max_order_quantity"
    events = all_events(app)[before:]
    assert [n.id for n in events] == [r.notification.id for r in saved]
    assert approvals_of(events) == {
        "RiskDesk.CommandApproved": 2,
        "Order.Placed": 2,
        "RiskDesk.CommandRejected": 1,
    }
    placed = {n.originator_id for n in events if n.topic.endswith("Order.Placed")}
    assert placed == {ok_first.order_id, ok_last.order_id}
    with pytest.raises(IllegalTransition):
        outcomes[1].settle(saved)
    assert outcomes[0].settle(saved)[0].target_id == ok_first.order_id


@pytest.mark.parametrize("store_url", [None])  # the lock held here is SQLite's
def test_a_failed_commit_answers_every_caller_with_the_error_and_writes_nothing(
    make_app: AppFactory, tmp_path: Path
) -> None:
    env = {**eventsourcing_env(None, tmp_path / "home"), "SQLITE_LOCK_TIMEOUT": "1"}
    app = make_app(env=env)
    session_id = start_session(app)
    before = len(all_events(app))
    writer = make_app(env=env)
    committer = GroupCommitter(writer)
    blocker = sqlite3.connect(env["SQLITE_DBNAME"], isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    errors: list[BaseException] = []

    def caller(n: int) -> None:
        try:
            committer.execute(small_buy(app, session_id, n))
        except BaseException as exc:  # collected and asserted on
            errors.append(exc)

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    blocker.execute("ROLLBACK")
    blocker.close()

    assert len(errors) == 4
    assert all("locked" in str(e) for e in errors)
    assert len(all_events(app)) == before  # nobody was told yes, nothing is on disk
    # The writer carries on once the store is free again.
    assert committer.execute(small_buy(app, session_id, 9))[0].command_type == "PlaceOrder"
    committer.close()
    with pytest.raises(RuntimeError, match="closed"):
        committer.execute(small_buy(app, session_id, 10))


def test_concurrent_http_cancels_share_a_transaction(
    make_app: AppFactory, read_models: ReadModels, tmp_path: Path
) -> None:
    """The control routes queue on the service's one committer instead of a lock."""
    app = make_app()
    session_id = start_session(app)
    orders = [small_buy(app, session_id, n) for n in range(THREADS)]
    for order in orders:
        app.execute(order)
    app.__class__ = GatedSave
    assert isinstance(app, GatedSave)
    app.gate = threading.Event()
    answers: list[Any] = []
    with running_api(app, read_models, tmp_path / "api") as api:
        committer = api.services.commands()

        def cancel(order_id: UUID) -> None:
            answers.append(api.post(f"/v1/orders/{order_id}/cancel", {"reason": "drill"}))

        threads = [threading.Thread(target=cancel, args=(o.order_id,)) for o in orders]
        run_gated(committer, app, threads)

    assert sorted(a.status_code for a in answers) == [200] * THREADS
    assert {a.json()["status"] for a in answers} == {"CANCELED"}
    assert committer.units == THREADS
    assert committer.groups <= 2  # the group held at the gate, then all the rest
    assert {app.order(o.order_id).status for o in orders} == {"CANCELED"}
