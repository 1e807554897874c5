"""Many writers on the same aggregates on PostgreSQL, each with its own TradingApp
(connections of its own): fills, marks, cancels and a two-step submission race.

tests/test_concurrency.py covers one approval raced by two writers and many orders
placed on one desk. Here the same Orders and the same Position are hit at once, and
every venue trade is delivered twice (as after a poll that timed out and was retried by
another worker): each trade lands exactly once, no fill quantity is lost, every
approval is used at most once, nothing deadlocks (every thread ends within its bound),
and the conflicts the writers retried are counted and printed.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from uuid import UUID

import pytest

from application.errors import ConcurrencyConflict
from application.trading import TradingApp
from domain.commands import AcknowledgeOrder, CancelOrder, SubmitOrder
from domain.errors import ApprovalError, IllegalTransition
from tests.conftest import AppFactory, all_events, kinds, start_session
from tests.http_helpers import place
from tests.reliability.venue import audit_approvals, kind, state

pytestmark = pytest.mark.postgres

WRITERS = 6
ORDERS = 3
TRADES_PER_ORDER = 15
LOT = Decimal("0.002")
PRICE = Decimal(50000)
JOIN_SECONDS = 120  # a deadlock would hold a thread past this


@pytest.fixture(params=["postgres"])
def store_url(request: pytest.FixtureRequest, pg_url: str) -> str:
    return pg_url


def open_order(app: TradingApp, session_id: UUID, n: int) -> UUID:
    # each one below the last: not a duplicate of the one before
    order_id = place(app, session_id, quantity=str(LOT * TRADES_PER_ORDER), price=str(PRICE - n))
    app.execute(SubmitOrder(order_id=order_id, client_order_id=f"c{order_id.hex[:16]}"))
    app.execute(AcknowledgeOrder(order_id=order_id, exchange_order_id=f"x{order_id.hex[:8]}"))
    return order_id


def run_bounded(targets: list[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=t, daemon=True) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=JOIN_SECONDS)
    assert not [t for t in threads if t.is_alive()], "a writer is stuck (deadlock?)"


def test_writers_racing_on_the_same_orders_lose_nothing_and_use_approvals_once(
    make_app: AppFactory,
) -> None:
    setup = make_app()
    session_id = start_session(setup)
    orders = [open_order(setup, session_id, n) for n in range(ORDERS)]
    spare = open_order(setup, session_id, ORDERS)  # canceled by one writer while others fill
    # submitted by every writer through the two-step path
    racing = place(setup, session_id, instrument="ETH-USDT", quantity="0.1", price="3000")
    # Every trade goes to two different writers.
    trades = [(o, f"t{n}-{k}") for n, o in enumerate(orders) for k in range(TRADES_PER_ORDER)]
    rng = random.Random(7)
    plans: list[list[tuple[UUID, str]]] = [[] for _ in range(WRITERS)]
    for trade in trades:
        for w in rng.sample(range(WRITERS), 2):
            plans[w].append(trade)
    for plan in plans:
        rng.shuffle(plan)

    apps = [make_app() for _ in range(WRITERS)]
    outcomes: Counter[str] = Counter()
    errors: list[BaseException] = []
    lock = threading.Lock()

    def note(outcome: str) -> None:
        with lock:
            outcomes[outcome] += 1

    def writer(w: int) -> Callable[[], None]:
        app = apps[w]

        def run() -> None:
            try:
                submit = SubmitOrder(order_id=racing, client_order_id="race")
                try:
                    app.apply(submit, app.approve(submit))
                    note("submission landed")
                except (ConcurrencyConflict, ApprovalError, IllegalTransition) as lost:
                    note(f"submission lost: {type(lost).__name__}")
                for i, (order_id, trade_id) in enumerate(plan_of(w)):
                    applied = app.record_fill(
                        order_id,
                        trade_id=trade_id,
                        quantity=LOT,
                        price=PRICE,
                        fee=Decimal("0.1"),
                        filled_at=app.clock(),
                    )
                    note("fill applied" if applied else "fill already applied")
                    if w == 0 and i == 3:
                        app.execute(CancelOrder(order_id=spare, reason="racing cancel"))
                    if w == 1 and i % 5 == 0:
                        app.observe_marks({"BTC-USDT": PRICE + i, "ETH-USDT": Decimal(3000)})
            except BaseException as exc:  # surfaced by the assertion below
                errors.append(exc)

        return run

    def plan_of(w: int) -> list[tuple[UUID, str]]:
        return plans[w]

    run_bounded([writer(w) for w in range(WRITERS)])
    assert errors == [], errors

    conflicts = sum(a.conflicts for a in apps)
    events = all_events(setup)
    names = kinds(events)
    print(f"{dict(outcomes)}; {conflicts} conflicts retried by {WRITERS} writers")

    assert outcomes["submission landed"] == 1 and names.count("Order.Submitted") == ORDERS + 2
    assert outcomes["fill applied"] == len(trades)
    assert outcomes["fill already applied"] == len(trades)
    assert conflicts > 0, "the writers never collided: the test did not test contention"
    # No lost update: every order holds all its trades, the position and the desk all.
    for order_id in orders:
        order = setup.order(order_id)
        assert sorted(order.trade_ids) == sorted(t for o, t in trades if o == order_id)
        assert order.filled_quantity == LOT * TRADES_PER_ORDER and order.status == "FILLED"
    assert setup.order(spare).status == "CANCELED"
    desk = setup.desk()
    assert desk.positions["BTC-USDT"] == LOT * len(trades)
    assert desk.cash == Decimal(100000) - LOT * len(trades) * PRICE - Decimal("0.1") * len(trades)
    filled = [state(n)["trade_id"] for n in events if kind(n) == "Order.Filled"]
    assert sorted(filled) == sorted(t for _, t in trades)
    # Every approval is used at most once, and every change has one the desk issued.
    issued = Counter(
        state(n)["approval"]["approval_id"] for n in events if kind(n) == "RiskDesk.CommandApproved"
    )
    used = Counter(
        state(n)["approval"]["approval_id"]
        for n in events
        if kind(n).startswith(("Order.", "Position.", "TradingSession.")) and "approval" in state(n)
    )
    assert max(used.values()) == 1
    assert set(used) <= set(issued)
    assert audit_approvals(events).tokens_verified == sum(used.values())
