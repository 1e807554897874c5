"""RiskDesk snapshots: a desk loaded from its snapshot is the desk replayed from scratch.

The history is made by the real TradingApp on SQLite and PostgreSQL: a funded session,
a filled order (a position), an open order, then enough marks to carry the desk past the
snapshot interval and a few events beyond it, so a cold load reads the snapshot and then
replays the events after it.
"""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.application import Repository

from adapters.audit_store import AuditStore, RawLog, Sealer, load_signing_key, verify_database
from adapters.clock import SimulatedClock
from adapters.keys import init_keys
from adapters.persistence import eventsourcing_env
from adapters.read_store import engines
from application.desk_snapshots import DESK_SNAPSHOT_INTERVAL
from application.trading import TradingApp
from domain.approval import ApprovalToken
from domain.book import Mark, OpenOrder
from domain.commands import AcknowledgeOrder, CancelOrder, PlaceOrder, SubmitOrder
from domain.desk_snapshot import DeskSnapshot
from domain.errors import ApprovalError
from domain.limits import RiskLimits
from domain.risk_desk import RiskDesk
from domain.values import OrderType, Side
from tests.conftest import AppFactory, all_events, kinds, start_session


def place(app: TradingApp, session: UUID, instrument: str, quantity: str, price: str) -> UUID:
    order_id = app.ids()
    app.execute(
        PlaceOrder(
            order_id=order_id,
            session_id=session,
            instrument=instrument,
            side=Side.BUY,
            order_type=OrderType.LIMIT,
            quantity=Decimal(quantity),
            limit_price=Decimal(price),
        )
    )
    app.execute(SubmitOrder(order_id=order_id, client_order_id=f"c-{order_id.hex[:8]}"))
    app.execute(AcknowledgeOrder(order_id=order_id, exchange_order_id=f"x-{order_id.hex[:8]}"))
    return order_id


def build_history(app: TradingApp, clock: SimulatedClock) -> tuple[UUID, UUID]:
    """(session, the order left open); the desk ends a few events past its snapshot."""
    session = start_session(app)
    filled = place(app, session, "BTC-USDT", "0.01", "50000")
    app.record_fill(
        filled,
        trade_id="t1",
        quantity=Decimal("0.01"),
        price=Decimal("50000"),
        fee=Decimal("0.5"),
        filled_at=clock(),
    )
    open_order = place(app, session, "ETH-USDT", "0.1", "2990")
    desk = app.desk()
    walk = random.Random(7)
    price = Decimal("50000")
    while desk.version < DESK_SNAPSHOT_INTERVAL:  # one save, as a backtest's batch would be
        clock.advance(1)
        price += Decimal(walk.randint(-50, 50))
        desk.observe_mark("BTC-USDT", price, clock())
    app.save(desk)
    app.observe_mark("ETH-USDT", Decimal("3001"))  # events after the snapshot
    app.observe_mark("BTC-USDT", price)
    return session, open_order


def test_desk_loaded_from_its_snapshot_equals_the_desk_replayed_and_still_approves(
    make_app: AppFactory, clock: SimulatedClock
) -> None:
    writer = make_app()
    session, open_order = build_history(writer, clock)
    assert writer.snapshots is not None
    snapshots = list(writer.snapshots.get(writer.desk_id, desc=True, limit=1))
    assert [s.originator_version for s in snapshots] == [DESK_SNAPSHOT_INTERVAL]
    snapshot = snapshots[0]
    assert isinstance(snapshot, DeskSnapshot)

    replayed: RiskDesk = Repository(event_store=writer.events).get(writer.desk_id)
    at_snapshot: RiskDesk = Repository(event_store=writer.events).get(
        writer.desk_id, version=snapshot.originator_version
    )
    assert snapshot.mutate(None) == at_snapshot
    cold = make_app()  # another process: an empty cache, so the load starts at the snapshot
    assert cold.repository.snapshot_store is cold.snapshots
    loaded = cold.desk()
    assert loaded == replayed
    assert loaded.version == replayed.version > DESK_SNAPSHOT_INTERVAL
    # equality alone would pass a str for a Side (StrEnum) or a list for a tuple
    assert type(loaded.limits) is RiskLimits
    assert {type(m) for m in loaded.marks.values()} == {Mark}
    assert [(type(o), type(o.side)) for o in loaded.open_orders.values()] == [(OpenOrder, Side)]
    assert loaded.recent_orders and {type(r) for r in loaded.recent_orders} == {tuple}
    assert loaded.positions == {"BTC-USDT": Decimal("0.01")}

    # approvals go on from the loaded desk, and a token still works once
    cancel = CancelOrder(order_id=open_order, reason="snapshot test")
    token = cold.approve(cancel)
    assert token.riskdesk_version == loaded.version + 1
    cold.apply(cancel, token)
    with pytest.raises(ApprovalError, match="used or stale"):
        cold.apply(cancel, token)
    clock.advance(1)
    cold.observe_mark("BTC-USDT", Decimal("50000"))
    tokens = cold.execute(
        PlaceOrder(
            order_id=cold.ids(),
            session_id=session,
            instrument="BTC-USDT",
            side=Side.BUY,
            order_type=OrderType.LIMIT,
            quantity=Decimal("0.01"),
            limit_price=Decimal("49990"),
        )
    )
    assert [type(t) for t in tokens] == [ApprovalToken]
    assert cold.desk() == Repository(event_store=cold.events).get(cold.desk_id)


def test_snapshots_stay_out_of_the_log_that_projections_and_the_seal_read(
    make_app: AppFactory, store_url: str | None, tmp_path: Path, clock: SimulatedClock
) -> None:
    app = make_app()
    build_history(app, clock)
    notifications = all_events(app)
    assert notifications[-1].id == len(notifications)  # every position is an event
    assert not [k for k in kinds(notifications) if "Snapshot" in k]

    home = tmp_path / "home"
    init_keys(home / "keys")
    key = load_signing_key(home / "keys" / "audit-ed25519.pem")
    engine, schema = engines(store_url, home)
    log = RawLog(eventsourcing_env(store_url, home))
    store = AuditStore(engine, schema)
    try:
        Sealer(log, store, key, clock, every=500).checkpoint_now()
        report = verify_database(log, store, key.public_key())
        assert report.problem is None and report.sealed == len(notifications)
    finally:
        log.close()
        store.close()
