"""Order routing through the real ccxt client and the fake Binance, on SQLite and PostgreSQL.

Exactly-once submission across a lost response and a restart; fills applied once per
trade id; a fill nobody asked for recorded and halting; a refused or unreachable venue
rejecting the Order without anything sent twice.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from adapters.alerts import MemoryAlerts
from adapters.clock import SimulatedClock
from adapters.exchange.ccxt_gateway import CcxtGateway
from application.order_router import OrderRouter
from application.ports import ExchangeUnavailable, OrderRequest, SubmissionUnknown
from domain.client_order_id import client_order_id
from domain.unknown_fill import UnknownFill
from tests.conftest import AppFactory, all_events, kinds, start_session
from tests.fake_exchange import Fault, running
from tests.fake_exchange.harness import SLOW, ManualClock, make_gateway, place

ORDER = "/api/v3/order"
WINDOW = timedelta(seconds=15)


class ProcessDied(Exception):
    """The process ends right after the create-order request went unanswered."""


class DiesAfterLostResponse:
    def __init__(self, gateway: CcxtGateway) -> None:
        self.gateway = gateway
        self.venue = gateway.venue

    def submit(self, request: OrderRequest) -> Any:
        try:
            return self.gateway.submit(request)
        except SubmissionUnknown:
            raise ProcessDied from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.gateway, name)


def order_streams(app: Any) -> set[str]:
    return {
        str(n.originator_id) for n in all_events(app) if n.topic.split(":")[1].startswith("Order.")
    }


@pytest.mark.parametrize(
    ("fault", "after_restart", "at_venue"),
    [
        (Fault("lose_response", ORDER, method="POST", seconds=SLOW), "OPEN", 1),
        (
            Fault("status", ORDER, method="POST", status=502, body="bad gateway", process=True),
            "OPEN",
            1,
        ),
        (Fault("stall", ORDER, method="POST", seconds=SLOW), "REJECTED", 0),
    ],
    ids=["response-lost", "5xx-after-accepting", "request-never-arrived"],
)
def test_lost_create_order_then_restart_leaves_exactly_one_order(
    make_app: AppFactory, clock: SimulatedClock, fault: Fault, after_restart: str, at_venue: int
) -> None:
    with running() as fake:
        app = make_app()
        session = start_session(app)
        order_id = place(app, session, price="49000")  # rests at the venue
        fake.inject(fault)
        router = OrderRouter(app, DiesAfterLostResponse(make_gateway(fake)), MemoryAlerts())
        with pytest.raises(ProcessDied):
            router.submit(order_id)
        assert app.order(order_id).status == "SUBMITTED"  # written before the request left
        app.close()

        restarted = make_app()  # a new process on the same store
        router = OrderRouter(restarted, make_gateway(fake), MemoryAlerts(), unknown_outcome=WINDOW)
        first = router.resolve_open()
        if after_restart == "REJECTED":
            assert first == {order_id: "SUBMITTED"}  # not found yet: it could still arrive
            clock.advance(WINDOW.total_seconds())
            assert router.resolve_open() == {order_id: "REJECTED"}
        else:
            assert first == {order_id: after_restart}
        assert router.submit(order_id) == after_restart  # a naive retry sends nothing

        assert fake.count("POST", ORDER) == 1
        assert len(fake.orders()) == at_venue
        if at_venue:
            [venue_order] = fake.orders()
            assert venue_order.client_order_id == client_order_id(order_id)
            assert restarted.order(order_id).exchange_order_id == str(venue_order.order_id)
        assert kinds(all_events(restarted)).count("Order.Placed") == 1
        assert order_streams(restarted) == {str(order_id)}


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        (Fault("lose_response", ORDER, method="POST", seconds=SLOW), "OPEN"),
        (Fault("malformed", ORDER, method="POST"), "OPEN"),
        (Fault("reset", ORDER, method="POST"), "SUBMITTED"),
        (Fault("status", ORDER, method="POST", status=429, body='{"code":-1003}'), "SUBMITTED"),
    ],
    ids=["response-lost", "malformed-json", "connection-reset", "429"],
)
def test_an_unknown_outcome_is_looked_up_before_anything_else(
    make_app: AppFactory, clock: SimulatedClock, fault: Fault, status: str
) -> None:
    with running() as fake:
        app = make_app()
        order_id = place(app, start_session(app), price="49000")
        fake.inject(fault)
        router = OrderRouter(app, make_gateway(fake), MemoryAlerts(), unknown_outcome=WINDOW)
        assert router.submit(order_id) == status
        assert fake.count("POST", ORDER) == 1 and fake.count("GET", ORDER) == 1
        clock.advance(WINDOW.total_seconds())
        final = router.resolve(order_id)
        assert final == ("OPEN" if status == "OPEN" else "REJECTED")
        assert fake.count("POST", ORDER) == 1  # never sent a second time


def test_a_failing_lookup_keeps_the_order_unknown_until_it_answers(make_app: AppFactory) -> None:
    with running() as fake:
        app = make_app()
        order_id = place(app, start_session(app), price="49000")
        fake.inject(Fault("lose_response", ORDER, method="POST", seconds=SLOW))
        fake.inject(Fault("status", ORDER, method="GET", status=503, body="down", times=3))
        router = OrderRouter(app, make_gateway(fake), MemoryAlerts())
        assert router.submit(order_id) == "SUBMITTED"  # the lookup gave up: still unknown
        assert fake.count("GET", ORDER) == 3
        assert router.resolve(order_id) == "OPEN"
        assert fake.count("POST", ORDER) == 1 and len(fake.orders()) == 1


def test_fills_are_applied_once_per_trade_id(make_app: AppFactory) -> None:
    with running() as fake:
        app = make_app()
        session = start_session(app)
        order_id = place(app, session, quantity="0.02", price="49000")
        router = OrderRouter(app, make_gateway(fake), MemoryAlerts())
        assert router.submit(order_id) == "OPEN"
        cid = client_order_id(order_id)
        fake.fill(cid, "0.005")
        assert router.poll_fills().applied == 1
        assert app.order(order_id).status == "PARTIALLY_FILLED"
        again = router.poll_fills()
        assert (again.applied, again.duplicates) == (0, 1)
        fake.fill(cid, "0.015", "48990")
        assert router.poll_fills().applied == 1
        order = app.order(order_id)
        assert (order.status, order.filled_quantity) == ("FILLED", Decimal("0.02"))
        assert order.fees == Decimal("0.245") + Decimal("0.73485")  # 0.1 % maker, in USDT
        assert order.fees == sum((t.commission for t in fake.trades()), Decimal(0))
        assert kinds(all_events(app)).count("Position.FillApplied") == 2
        restarted = OrderRouter(app, make_gateway(fake), MemoryAlerts())  # from the start
        assert restarted.poll_fills().duplicates == 2


def test_a_fill_for_an_order_we_never_placed_is_recorded_and_halts(make_app: AppFactory) -> None:
    with running() as fake:
        app = make_app()
        session = start_session(app)
        resting = place(app, session, price="49000")
        alerts = MemoryAlerts()
        router = OrderRouter(app, make_gateway(fake), alerts)
        assert router.submit(resting) == "OPEN"
        fake.foreign_order("BTCUSDT", "BUY", "0.001")  # someone trades the account by hand
        report = router.poll_fills()
        assert (report.applied, report.unknown) == (0, 1)
        assert app.desk().kill_state == "HALTED"
        assert "did not place" in (app.desk().kill_reason or "")
        [alert] = alerts.named("UnknownFill")
        assert alert.severity == "critical"
        # The kill switch canceled our order here, and the router canceled it there.
        assert app.order(resting).status == "CANCELED"
        assert [o.status for o in fake.orders() if o.via_api] == ["CANCELED"]
        assert router.poll_fills().unknown == 0  # recorded once per trade id
        recorded = [n for n in all_events(app) if n.topic.endswith("UnknownFill.Recorded")]
        assert len(recorded) == 1
        fill: UnknownFill = app.repository.get(recorded[0].originator_id)
        assert (fill.quantity, fill.client_order_id) == (Decimal("0.001"), "web_1")


def test_an_open_circuit_rejects_without_sending(make_app: AppFactory) -> None:
    with running() as fake:
        app = make_app()
        order_id = place(app, start_session(app), price="49000")
        gateway = make_gateway(fake, clock=ManualClock(), breaker_failures=1, retries=0)
        fake.inject(Fault("status", "/api/v3/exchangeInfo", status=503, body="down"))
        with pytest.raises(ExchangeUnavailable):
            gateway.rules()
        router = OrderRouter(app, gateway, MemoryAlerts())
        assert router.submit(order_id) == "REJECTED"
        assert "venue unavailable" in (app.order(order_id).end_reason or "")
        assert fake.count("POST", ORDER) == 0


def test_a_venue_refusal_rejects_the_order(make_app: AppFactory) -> None:
    with running(balances={"USDT": "100"}) as fake:
        app = make_app()
        order_id = place(app, start_session(app), price="49000")
        router = OrderRouter(app, make_gateway(fake), MemoryAlerts())
        assert router.submit(order_id) == "REJECTED"
        assert "insufficient balance" in (app.order(order_id).end_reason or "")


def test_cancel_applies_a_racing_fill_first(make_app: AppFactory) -> None:
    with running() as fake:
        app = make_app()
        order_id = place(app, start_session(app), quantity="0.01", price="49000")
        router = OrderRouter(app, make_gateway(fake), MemoryAlerts())
        router.submit(order_id)
        fake.fill(client_order_id(order_id), "0.004")  # fills just before our cancel lands
        assert router.cancel(order_id, "no longer wanted") == "CANCELED"
        order = app.order(order_id)
        assert order.filled_quantity == Decimal("0.004") and order.anomalies == []
        assert app.desk().kill_state == "ACTIVE"
        assert fake.orders()[0].status == "CANCELED"
