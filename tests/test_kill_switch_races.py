"""The kill switch engaged by one process (`ais serve`) while another (`ais run`) is in
the middle of ending or sending the same order: neither side fails, nothing is sent.

Each race is forced at its exact point: the losing side read the order while it was
still open, and the other side ends it right after that read (two TradingApps on one
store, as two processes are).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest

from adapters.alerts import MemoryAlerts
from application.order_router import OrderRouter
from application.trading import TradingApp
from domain.commands import CancelOrder
from domain.order import Order
from tests.conftest import AppFactory, start_session
from tests.fake_exchange import running
from tests.fake_exchange.harness import make_gateway, place

ORDER = "/api/v3/order"


def after_reading(app: TradingApp, then: Callable[[], object]) -> Callable[[UUID], Order]:
    """`app.order` that runs `then` once, right after its first read of an open order."""
    read = app.order
    done: list[bool] = []

    def order(order_id: UUID) -> Order:
        seen = read(order_id)
        if not done and seen.status == "PENDING_NEW":
            done.append(True)
            then()
        return seen

    return order


def test_engaging_passes_over_an_order_the_loop_just_ended(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, loop = make_app(), make_app()
    order_id = place(loop, start_session(loop), price="49000")

    def loop_cancels() -> None:
        loop.execute(CancelOrder(order_id=order_id, reason="plan replaced"))

    monkeypatch.setattr(server, "order", after_reading(server, loop_cancels))
    server.engage_kill_switch("drill", by="ops")  # its sweep finds the order ended
    assert server.desk().kill_state == "HALTED"
    assert loop.order(order_id).status == "CANCELED"
    assert loop.order(order_id).end_reason == "plan replaced"


@pytest.mark.parametrize("window", ["before approval", "between approval and apply"])
def test_an_order_the_kill_switch_cancels_while_being_sent_is_not_sent(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch, window: str
) -> None:
    server, loop = make_app(), make_app()
    order_id = place(loop, start_session(loop), price="49000")

    def operator_engages() -> None:
        server.engage_kill_switch("drill", by="ops")

    if window == "before approval":
        monkeypatch.setattr(loop, "order", after_reading(loop, operator_engages))
    else:
        apply = loop.apply

        def engaged_first(*args: Any) -> None:
            operator_engages()
            apply(*args)

        monkeypatch.setattr(loop, "apply", engaged_first)
    with running() as fake:
        router = OrderRouter(loop, make_gateway(fake), MemoryAlerts())
        assert router.submit(order_id) == "CANCELED"
        assert fake.count("POST", ORDER) == 0
    assert loop.order(order_id).end_reason == "kill switch engaged"
    assert loop.desk().kill_state == "HALTED"
