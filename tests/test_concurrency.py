"""Concurrent writers on PostgreSQL: one approval lands once; the desk loses no update."""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from application.errors import ConcurrencyConflict
from application.trading import TradingApp
from domain.commands import PlaceOrder, SubmitOrder
from domain.errors import ApprovalError
from domain.values import OrderType, Side
from tests.conftest import AppFactory, all_events, kinds, start_session

pytestmark = pytest.mark.postgres


@pytest.fixture(params=["postgres"])
def store_url(request: pytest.FixtureRequest, pg_url: str) -> str:
    return pg_url


class SaveAtBarrier(TradingApp):
    """Holds every save until both writers have loaded and applied: a guaranteed race."""

    barrier: threading.Barrier

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        self.barrier.wait(timeout=30)
        return super().save(*objs, **kwargs)


def run_threads(*targets: Callable[[], None]) -> None:
    threads = [threading.Thread(target=t) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)


def test_two_writers_racing_with_one_approval_land_exactly_once(make_app: AppFactory) -> None:
    setup = make_app()
    session_id = start_session(setup)
    order_id = setup.ids()
    setup.execute(
        PlaceOrder(
            order_id=order_id,
            session_id=session_id,
            instrument="BTC-USDT",
            side=Side.BUY,
            order_type=OrderType.LIMIT,
            quantity=Decimal("0.1"),
            limit_price=Decimal(50000),
        )
    )
    submit = SubmitOrder(order_id=order_id, client_order_id="c1")
    token = setup.approve(submit)

    barrier = threading.Barrier(2)
    writers = [make_app(), make_app()]
    outcomes: list[str] = []
    for writer in writers:
        writer.__class__ = SaveAtBarrier
        writer.barrier = barrier  # type: ignore[attr-defined]

    def write(app: TradingApp) -> Callable[[], None]:
        def run() -> None:
            try:
                app.apply(submit, token)
                outcomes.append("landed")
            except ConcurrencyConflict as exc:
                outcomes.append(f"conflict: {exc}")

        return run

    run_threads(*(write(w) for w in writers))
    assert sorted(o.split(":")[0] for o in outcomes) == ["conflict", "landed"]
    assert "another writer changed it first" in next(o for o in outcomes if o != "landed")
    assert kinds(all_events(setup)).count("Order.Submitted") == 1
    assert setup.order(order_id).status == "SUBMITTED"
    with pytest.raises(ApprovalError, match="used or stale"):
        setup.apply(submit, token)


def test_many_threads_on_one_desk_lose_no_update(make_app: AppFactory) -> None:
    setup = make_app()
    session_id = start_session(setup)
    threads, per_thread = 4, 5
    apps = [make_app() for _ in range(threads)]
    errors: list[BaseException] = []

    def writer(app: TradingApp) -> Callable[[], None]:
        def run() -> None:
            try:
                for i in range(per_thread):
                    app.execute(
                        PlaceOrder(
                            order_id=app.ids(),
                            session_id=session_id,
                            instrument="ETH-USDT",
                            side=Side.BUY,
                            order_type=OrderType.LIMIT,
                            quantity=Decimal("0.01"),
                            limit_price=Decimal(3000 - i - 10 * apps.index(app)),
                        )
                    )
            except BaseException as exc:  # surfaced by the assertion below
                errors.append(exc)

        return run

    run_threads(*(writer(a) for a in apps))
    assert errors == []
    placed = kinds(all_events(setup)).count("Order.Placed")
    assert placed == threads * per_thread
    desk = setup.desk()
    assert len(desk.open_orders) == placed
    assert desk.approved_count == placed + 1  # + the session start
