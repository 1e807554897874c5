"""A live trading loop (`ais run --mode live`) against the fake Binance, for crash tests.

The fake venue serves bundled ETHBTC 5-minute bars of January 2018 (scaled to USDT
prices) as BTCUSDT 1-minute bars up to the current minute, from where the agents hold a
long view for the next 50 bars; or the same bars cut short, which makes the loop sell
out. Every restarted loop decides on its first step, so a test that switches between
the two between restarts keeps orders flowing. A `Filler` thread plays the market,
filling resting orders in random parts, so fills arrive while the loop runs, dies and
restarts.

`venue_matches_log` is the end-of-test contract: orders at the venue are exactly the
submitted Orders of the log (once each), every venue trade is applied exactly once,
and the desk's position is what the venue holds.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import threading
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from adapters.event_log import EventLog
from adapters.persistence import eventsourcing_env
from domain.approval import KeyRing
from domain.commands import desk_id
from domain.order import TERMINAL, Order
from domain.risk_desk import RiskDesk
from projections.audit_approvals import ApprovalAuditor, ApprovalStats
from projections.audit_seal import render_state
from tests.conftest import SECRET
from tests.fake_exchange import API_KEY, FakeBinance
from tests.fake_exchange import SECRET as VENUE_SECRET
from tests.fake_exchange.market_feed import KlineFeed, csv_rows
from tests.test_run import venue_config

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "data" / "ETHBTC_5m.csv"
NOW_ROW = 5250  # bars before it make a window the agents are long on, 50 bars in a row
SCALE = Decimal(100_000)  # ETH/BTC ~0.1 -> ~10 000 "USDT"
BARS = 600  # more than the 577 the regime filter needs
MINUTE_MS = 60_000
# Where the venue trades: 1 % above the last close, so the loop's buys (limit at the
# mark) rest until the Filler fills them; its sells cross at once.
PREMIUM = Decimal("1.01")
VENUE_STATUS = {"NEW": "OPEN", "PARTIALLY_FILLED": "PARTIALLY_FILLED"}


def scaled(price: str) -> str:
    return f"{Decimal(price) * SCALE:.2f}"


def feeds(now_ms: int) -> tuple[KlineFeed, KlineFeed, Decimal]:
    """(long, flat, venue price), the current minute's bar opening at `now_ms` floored.

    `long` makes the agents buy up to the weight limit. `flat` is the same bars without
    the oldest 200: too little history for the regime filter, whose scale 0 then
    silences every agent, so the loop sells what it holds. Marks are the same in both.
    """
    minute = now_ms // MINUTE_MS * MINUTE_MS
    rows = [
        [str(minute + (k - NOW_ROW) * MINUTE_MS), *(scaled(x) for x in r[1:5]), r[5]]
        for k, r in enumerate(csv_rows(SOURCE))
        if NOW_ROW - BARS <= k < NOW_ROW + 50
    ]
    last_close = Decimal(rows[BARS - 1][4])
    price = (last_close * PREMIUM).quantize(Decimal("0.01"))
    return KlineFeed(rows=rows), KlineFeed(rows=rows[200:]), price


def live_config(tmp_path: Path) -> Path:
    """test_run's venue config (BTC-USDT only), deciding the fate of a lost submission
    after 2 s instead of 15 (the recvWindow shrunk to 1 s to keep the rule true)."""
    config = venue_config(tmp_path)
    shutil.copy(ROOT / "config" / "reconciliation.toml", config)
    exchange = config / "exchange.toml"
    text = exchange.read_text().replace("recv_window_ms = 5000", "recv_window_ms = 1000")
    text = text.replace('unknown_outcome_seconds = "15"', 'unknown_outcome_seconds = "2"')
    exchange.write_text(text.replace("# ccxt_rate_limit_ms = 50", "ccxt_rate_limit_ms = 1"))
    return config


UNKNOWN_OUTCOME_SECONDS = 2.0


def loop_env(home: Path, fake: FakeBinance, config: Path, store_url: str | None) -> dict[str, str]:
    """What an operator's `ais run --mode live` sees: only this store, venue and config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIS_")}
    env.update(
        AIS_HOME=str(home),
        AIS_RISK_HMAC_KEYS=f"k1:{SECRET}",
        AIS_CONFIG_DIR=str(config),
        AIS_EXCHANGE_BASE_URL=fake.base_url,
        AIS_EXCHANGE_API_KEY=API_KEY,
        AIS_EXCHANGE_API_SECRET=VENUE_SECRET,
        COLUMNS="200",
    )
    if store_url:
        env["AIS_DATABASE_URL"] = store_url
    return env


LIVE_ARGV = ["run", "--mode", "live", "--timeframe", "1m", "--interval", "0.05"]


class Filler(threading.Thread):
    """The market: every few tenths of a second one resting order fills, wholly or in part."""

    def __init__(self, fake: FakeBinance, seed: int) -> None:
        super().__init__(name="filler", daemon=True)
        self.fake = fake
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.fills = 0

    def run(self) -> None:
        while not self.stop.wait(self.rng.uniform(0.1, 0.4)):
            resting = [o for o in self.fake.orders() if o.is_open]
            if not resting:
                continue
            order = self.rng.choice(resting)
            part = (order.remaining * Decimal(self.rng.uniform(0.1, 1.3))).quantize(
                Decimal("0.00001")
            )
            quantity = min(max(part, Decimal("0.00001")), order.remaining)
            try:
                self.fake.fill(order.client_order_id, str(quantity))
            except ValueError:  # canceled by the loop since it was listed
                continue
            self.fills += 1

    def __enter__(self) -> Filler:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.join(timeout=10)


@dataclass(frozen=True)
class Tally:
    venue_orders: int
    trades: int
    statuses: dict[str, int]
    approvals: ApprovalStats


def notifications(log: EventLog) -> list[Any]:
    return list(log.recorder.select_notifications(start=None, limit=10_000_000))


def kind(notification: Any) -> str:
    return str(notification.topic.split(":", 1)[1])


def state(notification: Any) -> dict[str, Any]:
    """The event's state as plain JSON values (how the audit export renders it)."""
    parsed: dict[str, Any] = json.loads(render_state(notification.state))
    return parsed


def audit_approvals(notes: list[Any], secret: str = SECRET) -> ApprovalStats:
    """Every Order/Position/TradingSession event re-verified against its approval."""
    auditor = ApprovalAuditor(KeyRing.parse(f"k1:{secret}"))
    for n in notes:
        auditor.check(n.id, str(n.originator_id), n.originator_version, n.topic, state(n))
    auditor.finish()
    return auditor.stats


def venue_matches_log(fake: FakeBinance, env: dict[str, str], account: str = "default") -> Tally:
    """Orders at the venue = submitted Orders in the log; venue trades applied once each."""
    log = EventLog(eventsourcing_env(env.get("AIS_DATABASE_URL"), Path(env["AIS_HOME"])))
    try:
        notes = notifications(log)
        placed = [n.originator_id for n in notes if kind(n) == "Order.Placed"]
        orders: list[Order] = [log.repository.get(i) for i in placed]
        sent = {o.client_order_id: o for o in orders if o.client_order_id is not None}
        at_venue = [o for o in fake.orders() if o.via_api]
        clients = Counter(o.client_order_id for o in at_venue)
        assert not [c for c, n in clients.items() if n > 1], f"sent twice: {clients}"
        assert set(clients) <= set(sent), f"unknown to the log: {set(clients) - set(sent)}"
        for theirs in at_venue:
            ours = sent[theirs.client_order_id]
            expected = VENUE_STATUS.get(theirs.status, theirs.status)
            assert (ours.status, ours.filled_quantity) == (expected, theirs.executed_qty), (
                f"{theirs.client_order_id}: venue {theirs.status} {theirs.executed_qty}, "
                f"log {ours.status} {ours.filled_quantity}"
            )
        never_arrived = [o for c, o in sent.items() if c not in clients]
        assert all(o.status == "REJECTED" for o in never_arrived), [
            (o.client_order_id, o.status) for o in never_arrived
        ]
        applied = [state(n)["trade_id"] for n in notes if kind(n) == "Order.Filled"]
        trades = [f"{t.symbol}-{t.trade_id}" for t in fake.trades()]  # the gateway's trade id
        assert sorted(applied) == sorted(trades), f"lost or doubled: {applied} vs {trades}"
        assert sum(1 for n in notes if kind(n) == "Position.FillApplied") == len(trades)
        desk: RiskDesk = log.repository.get(desk_id(account))
        book = fake.book()
        held = book.free.get("BTC", Decimal(0)) + book.locked.get("BTC", Decimal(0))
        assert desk.positions.get("BTC-USDT", Decimal(0)) == held
        assert {UUID(i) for i in desk.open_orders} == {
            o.id for o in orders if o.status not in TERMINAL
        }
        return Tally(
            len(at_venue),
            len(trades),
            dict(Counter(o.status for o in orders)),
            audit_approvals(notes),
        )
    finally:
        log.close()
