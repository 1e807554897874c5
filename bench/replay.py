"""Replay benchmark: rebuilding every read model from position 0, against reading the log.

Run `.venv/bin/python bench/replay.py [--quick] [--profile] [--out FILE]`. Prints a table
and ends with ONE JSON line: a list of `{name, value, unit, floor, ratio, target, ok}`.

What is measured, on SQLite (a file in a temporary directory) and on PostgreSQL (a fresh
schema, dropped at the end), for a log of 10k, 100k and 1M events (`--quick`: 2k, 10k):

1. `replay_<store>_<size>_events_per_s`: `projections.replay.rebuild()` of every
   projection in `all_projections()` up to the size's last position, exactly as
   `ais replay` runs it: reset the tables, split the projections into lanes, one per core
   (`os.cpu_count()`; `projections.lanes`), this process running the dearest lane and
   processes forked from it the others. Each lane reads from the database only the topics its
   projections want (`StoredEventSource.read_topics`, windows of 20000 positions), one
   transaction per projection and batch, then digests its read models. Floor: the raw
   read below, in one process; ratio = rebuild events/s / raw events/s. Target >= 0.25 on
   SQLite, >= 0.15 on PostgreSQL (reported, never fails the run).
2. `read_raw_<store>_<size>_events_per_s`: the floor. The same notifications read with
   `recorder.select_notifications(start=after + 1, limit=1000)` over the same range,
   nothing decoded: the cheapest way through the whole log in one process.
3. `read_decoded_<store>_<size>_events_per_s`: the second floor, `StoredEventSource.read`
   (the projector's following read: select + decode + `LoggedEvent`), its ratio against
   the raw read shows what decoding costs. Not at 1M: the ratio is the same, and the pass
   would cost `make bench` 25 s.
4. `replay_sqlite_<size>_one_process_events_per_s` (not at 1M): the same rebuild in this
   process alone (`ais replay --workers 1`), against the same floor: what the lanes gain.
   `replay_sqlite_<size>_digest_share`: the part of that rebuild's wall time spent after
   the last batch was projected (the digest dump of every read model).
5. `replay_<store>_<size>_peak_rss_mb`: `ru_maxrss` of the process that ran the rebuild
   or of its largest lane process, read right after it. Every size runs in a fresh child
   process, so the figure is that rebuild's peak (plus the interpreter and imports), not
   an earlier phase's.
6. The scaling curve (issue 10), by `bench/scaling.py`: cost per event against the size
   of the log, floor = the smallest size's figure, ratio = floor / value (1.0 = flat),
   target >= 0.8 (reported, never fails the run).
   `scaling_replay_<store>_<size>_us_per_event`: the rebuild of (1), per event.
   `scaling_append_<store>_<size>_us_per_event`: wall time per appended event of a day of
   real work (`--quick`: 40, else 120 order life cycles of the template trader below,
   every command approved or refused by the RiskDesk) through a fresh TradingApp on the
   benchmark store, run while the log is being written, the moment it holds the size;
   the faster of two such days.

The raw floor runs twice, before and after the rebuilds (raw, decoded, rebuilds, raw), and
counts once over both passes, so cache warm-up and table growth favour neither side.

The log. Driving 1M events through `TradingApp.execute` would take over half an hour,
so a template history is made with the real TradingApp on a scratch SQLite store: a
session with marks on two instruments, order life cycles with full and partial fills,
cancels, expiries, exchange rejections, risk rejections (mandate, instrument), a session
halt with an order refused meanwhile, a kill-switch drill, then the book is sold flat
and the session ended (a few thousand events). Its stored records are then copied into
the benchmark store with `insert_events` in large batches until the log has the events
wanted. Copy k gets fresh originator ids (uuid5 of k and the template id, also rewritten
wherever an id appears inside an event's state, e.g. an order's session or a fill's
order) and its dates moved k template-days later, so every copy is a consistent history
of its own aggregates on its own trading day and each projection sees a session start,
its orders' Placed before their other events, and a flat book at the end. The last copy
is cut where the size ends. One log of the largest size is written per store, once per
run; the smaller sizes are its prefixes (rebuild and floors stop at that position). The
appended days go in right after each size's position and copying resumes after them,
so a larger size's prefix holds the smaller sizes' days among its events (a size counts
positions, whatever wrote them). Each day is a new account (`bench-append-<size>-<run>`)
on a day of its own after every copy's: it shares no aggregate and no trading day.

Run it on a quiet machine: with few cores, other processes move these figures a lot.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import gc
import io
import itertools
import math
import multiprocessing
import os
import pstats
import random
import re
import resource
import signal
import sys
import tempfile
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

from eventsourcing.persistence import ApplicationRecorder, StoredEvent
from figures import Figure, publish
from rich.console import Console
from scaling import scaling_figures, size_label
from sqlalchemy import func, select
from stores import postgres_reachable, postgres_schema

from adapters.clock import SeededIds, SimulatedClock
from adapters.event_log import EventLog, StoredEventSource
from adapters.persistence import eventsourcing_env
from adapters.read_store import SqlReadStore
from adapters.rebuild_lanes import ReadSideSpec, process_lanes
from adapters.settings import PROJECT_ROOT, load_catalog, load_limits
from application.errors import RiskRejected
from application.trading import TradingApp
from domain.approval import KeyRing
from domain.commands import (
    AcknowledgeOrder,
    CancelOrder,
    EndSession,
    ExpireOrder,
    HaltSession,
    PlaceOrder,
    RejectOrder,
    ResumeSession,
    StartSession,
    SubmitOrder,
)
from domain.values import Mode, OrderType, Side
from projections.registry import all_projections
from projections.replay import ReplayResult, rebuild
from projections.runner import Progress

CONFIG = PROJECT_ROOT / "config"
KEYS = KeyRing.parse("bench1:" + "b" * 48)
START = datetime(2024, 1, 2, 9, 0, tzinfo=UTC)
ACCOUNT = "bench"
CAPITAL = Decimal("100000")
FEE_RATE = Decimal("0.001")
BATCH = 1000  # the Projector's default batch size; both floors read in the same batches
# Bytes of event state per insert_events call when building the log. PostgreSQL stays
# small: its recorder sends a batch as one array parameter in psycopg's pipeline mode, and
# with psycopg 3.3.9 a batch of ~7 MB (10k events) hangs forever in `pipeline.sync()`.
WRITE_BATCH_BYTES = {"sqlite": 32_000_000, "postgres": 2_000_000}
COPY_NAMESPACE = uuid.UUID("6f1d7f4e-3c52-4b8e-9a51-0d3c2b7e8a10")
TARGETS = {"sqlite": 0.25, "postgres": 0.15}
LANES = os.cpu_count() or 1  # `ais replay`'s default: one rebuilding process per core
STEP_SECONDS = 3  # one order life cycle per step: under the shipped 30 orders / 60 s
# Appended days per size, the fastest counts: on a shared machine a stall (another
# process's I/O or CPU) often lands in one day's second of work, rarely in both.
APPEND_RUNS = 2


@dataclasses.dataclass(frozen=True)
class Sizes:
    events: tuple[int, ...]  # log sizes measured; the log holds the largest
    lifecycles: int  # order life cycles in the template history
    appended: int  # order life cycles appended through TradingApp at each size


QUICK = Sizes(events=(2_000, 10_000), lifecycles=120, appended=40)
FULL = Sizes(events=(10_000, 100_000, 1_000_000), lifecycles=300, appended=120)


# --- 1. the template history, through the real TradingApp -------------------------------------
class TemplateTrader:
    """A deterministic paper session: every change is a real `TradingApp` command."""

    def __init__(self, app: TradingApp, clock: SimulatedClock) -> None:
        self.app = app
        self.clock = clock
        self.random = random.Random(20240102)
        self.marks = {"BTC-USDT": Decimal("50000.00"), "ETH-USDT": Decimal("3000.00")}
        self.lots = {"BTC-USDT": Decimal("0.00001"), "ETH-USDT": Decimal("0.0001")}
        self.held = {"BTC-USDT": Decimal(0), "ETH-USDT": Decimal(0)}
        self.session_id = app.ids()
        self.trades = 0
        self.rejections = 0

    # marks ---------------------------------------------------------------------------------
    def tick(self, step: int) -> None:
        self.clock.advance(STEP_SECONDS)
        btc = self.marks["BTC-USDT"] + Decimal(self.random.randint(-1500, 1500)) / 100
        self.marks["BTC-USDT"] = btc
        self.app.observe_mark("BTC-USDT", btc)
        if step % 2 == 0:
            eth = self.marks["ETH-USDT"] + Decimal(self.random.randint(-150, 150)) / 100
            self.marks["ETH-USDT"] = eth
            self.app.observe_mark("ETH-USDT", eth)

    # commands ------------------------------------------------------------------------------
    def place(
        self, instrument: str, side: Side, quantity: Decimal, *, reduce_only: bool = False
    ) -> uuid.UUID | None:
        mark = self.marks.get(instrument, Decimal("0.5"))
        offset = Decimal("1.00") if instrument != "ADA-USDT" else Decimal("0")
        price = mark - offset if side is Side.BUY else mark + offset
        order_id = self.app.ids()
        try:
            self.app.execute(
                PlaceOrder(
                    order_id=order_id,
                    session_id=self.session_id,
                    instrument=instrument,
                    side=side,
                    order_type=OrderType.LIMIT,
                    quantity=quantity,
                    limit_price=price,
                    reduce_only=reduce_only,
                )
            )
        except RiskRejected:
            self.rejections += 1
            return None
        return order_id

    def open(self, order_id: uuid.UUID) -> None:
        self.app.execute(SubmitOrder(order_id=order_id, client_order_id=f"r-{order_id.hex[:20]}"))
        self.app.execute(AcknowledgeOrder(order_id=order_id, exchange_order_id=f"x{self.trades}"))

    def fill(self, order_id: uuid.UUID, quantity: Decimal) -> None:
        order = self.app.order(order_id)
        assert order.limit_price is not None
        self.trades += 1
        fee = (quantity * order.limit_price * FEE_RATE).quantize(Decimal("0.00000001"))
        self.clock.advance(0.25)
        self.app.record_fill(
            order_id,
            trade_id=f"t{self.trades}",
            quantity=quantity,
            price=order.limit_price,
            fee=fee,
            filled_at=self.clock(),
        )
        self.held[order.instrument] += quantity if order.side == "BUY" else -quantity

    def half(self, instrument: str, quantity: Decimal) -> Decimal:
        return (quantity / 2).quantize(self.lots[instrument], rounding=ROUND_DOWN)

    def buy_filled(self, instrument: str, quantity: Decimal, partial: bool) -> None:
        order_id = self.place(instrument, Side.BUY, quantity)
        assert order_id is not None
        self.open(order_id)
        if partial:
            first = self.half(instrument, quantity)
            self.fill(order_id, first)
            self.fill(order_id, quantity - first)
        else:
            self.fill(order_id, quantity)

    def sell_held(self, instrument: str, share: Decimal) -> bool:
        held = self.held[instrument]
        quantity = (held * share).quantize(self.lots[instrument], rounding=ROUND_DOWN)
        if quantity * self.marks[instrument] < 6:  # under the venue's minimum notional
            quantity = held
        if quantity <= 0 or quantity * self.marks[instrument] < 6:
            return False
        order_id = self.place(instrument, Side.SELL, quantity, reduce_only=True)
        assert order_id is not None
        self.open(order_id)
        first = self.half(instrument, quantity)
        self.fill(order_id, first)
        self.fill(order_id, quantity - first)
        return True

    def lifecycle(self, i: int) -> None:
        """One order life cycle; the case cycles so the mix repeats every 20 steps."""
        case = i % 20
        btc = Decimal("0.00200") + Decimal(i % 13) * Decimal("0.00010")
        eth = Decimal("0.0500") + Decimal(i % 11) * Decimal("0.0010")
        if case in (0, 4, 10, 14):
            self.buy_filled("BTC-USDT", btc, partial=False)
        elif case in (2, 12):
            self.buy_filled("BTC-USDT", btc, partial=True)
        elif case in (1, 11):  # partly filled, the rest canceled
            order_id = self.place("ETH-USDT", Side.BUY, eth)
            assert order_id is not None
            self.open(order_id)
            self.fill(order_id, self.half("ETH-USDT", eth))
            self.app.execute(CancelOrder(order_id=order_id, reason="rest not wanted"))
        elif case in (3, 13):  # canceled before any fill
            order_id = self.place("BTC-USDT", Side.BUY, btc)
            assert order_id is not None
            self.open(order_id)
            self.app.execute(CancelOrder(order_id=order_id, reason="price moved away"))
        elif case in (5, 15):
            if not self.sell_held("BTC-USDT", Decimal("0.5")):
                self.buy_filled("BTC-USDT", btc, partial=False)
        elif case in (6, 16):  # the exchange refuses it
            order_id = self.place("BTC-USDT", Side.BUY, btc)
            assert order_id is not None
            self.app.execute(SubmitOrder(order_id=order_id, client_order_id=f"r-{i}"))
            self.app.execute(RejectOrder(order_id=order_id, reason="exchange: insufficient"))
        elif case == 7:  # the risk desk refuses it: above the mandate's max order quantity
            assert self.place("BTC-USDT", Side.BUY, Decimal("3")) is None
        elif case == 17:  # the risk desk refuses it: instrument outside the mandate
            assert self.place("ADA-USDT", Side.BUY, Decimal("20")) is None
        elif case in (8, 18):  # partly filled, then expired
            order_id = self.place("BTC-USDT", Side.BUY, btc)
            assert order_id is not None
            self.open(order_id)
            self.fill(order_id, self.half("BTC-USDT", btc))
            self.app.execute(ExpireOrder(order_id=order_id, reason="good-till-time elapsed"))
        elif not self.sell_held("ETH-USDT", Decimal("0.7")):  # 9, 19
            self.buy_filled("ETH-USDT", eth, partial=False)

    def run(self, lifecycles: int) -> None:
        self.app.execute(
            StartSession(
                session_id=self.session_id,
                mode=Mode.PAPER,
                starting_capital=CAPITAL,
                config_digest="bench-replay",
            )
        )
        for i in range(lifecycles):
            self.tick(i)
            self.lifecycle(i)
            if i % 60 == 45:  # an operator halt; an order meanwhile is refused
                self.app.execute(HaltSession(session_id=self.session_id, reason="operator halt"))
                assert self.place("BTC-USDT", Side.BUY, Decimal("0.002")) is None
                self.app.execute(ResumeSession(session_id=self.session_id, reason="resumed"))
            if i == lifecycles // 2:  # a kill-switch drill (no order is open between steps)
                self.app.engage_kill_switch("drill", by="bench")
                self.app.reset_kill_switch("drill over", by="bench")
        for instrument in self.held:  # flat at the end, so the next copy funds a fresh book
            self.tick(0)
            self.sell_held(instrument, Decimal(1))
            assert self.held[instrument] == 0, self.held
        self.app.execute(EndSession(session_id=self.session_id, reason="day over"))


def trading_app(
    env: dict[str, str], clock: SimulatedClock, seed: int, account: str = ACCOUNT
) -> TradingApp:
    return TradingApp(
        account_id=account,
        limits=load_limits(CONFIG / "risk.toml"),
        catalog=load_catalog(CONFIG / "instruments.toml"),
        keys=KEYS,
        clock=clock,
        ids=SeededIds(seed),
        env=env,
    )


def record_template(lifecycles: int) -> list[StoredEvent]:
    """The template history's stored records, in log order."""
    with tempfile.TemporaryDirectory(prefix="ais-bench-template-") as tmp:
        clock = SimulatedClock(START)
        app = trading_app(eventsourcing_env(None, Path(tmp)), clock, 11)
        try:
            TemplateTrader(app, clock).run(lifecycles)
            recorder = app.recorder
            assert isinstance(recorder, ApplicationRecorder)
            records: list[StoredEvent] = []
            start = 1
            while batch := recorder.select_notifications(start=start, limit=5000):
                records += [
                    StoredEvent(n.originator_id, n.originator_version, n.topic, n.state)
                    for n in batch
                ]
                start = batch[-1].id + 1
        finally:
            app.close()
    return records


def append_work(env: dict[str, str], account: str, day: date, lifecycles: int) -> tuple[int, float]:
    """A day of the template trader's work through a fresh TradingApp on the benchmark
    store: (events appended, seconds). The app is opened (its desk created) untimed. A new
    account each time, so every call appends the same events: an account's positions
    would drop a second day's fills, whose trade ids repeat the first day's."""
    clock = SimulatedClock(datetime.combine(day, START.timetz()))
    app = trading_app(env, clock, zlib.crc32(account.encode()), account)
    try:
        recorder = app.recorder
        assert isinstance(recorder, ApplicationRecorder)
        before = recorder.max_notification_id() or 0
        t0 = time.perf_counter()
        TemplateTrader(app, clock).run(lifecycles)
        seconds = time.perf_counter() - t0
        return (recorder.max_notification_id() or 0) - before, seconds
    finally:
        app.close()


# --- 2. copies of the template with fresh ids and dates ------------------------------------------
_TOKENS = re.compile(
    rb"(?<![0-9a-f-])([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    rb"|[0-9a-f]{32})(?![0-9a-f-])"
    rb"|(?<![0-9])([0-9]{4}-[0-9]{2}-[0-9]{2})T[0-9]{2}:[0-9]{2}"
)
Token = tuple[str, str]  # ("hex" | "str", uuid hex) or ("date", ISO date)


@dataclasses.dataclass(frozen=True)
class TemplateRecord:
    originator: str  # uuid hex
    version: int
    topic: str
    literals: tuple[bytes, ...]  # len(tokens) + 1 pieces of the state between tokens
    tokens: tuple[Token, ...]


class Template:
    """Stored records split around the ids and dates a copy rewrites."""

    def __init__(self, records: list[StoredEvent]) -> None:
        ids = {_uuid(r.originator_id).hex for r in records}
        dates: set[date] = set()
        self.records: list[TemplateRecord] = []
        for r in records:
            literals: list[bytes] = []
            tokens: list[Token] = []
            at = 0
            for m in _TOKENS.finditer(r.state):
                if m.group(1) is not None:
                    text = m.group(1).decode()
                    hexed = text.replace("-", "")
                    if hexed not in ids:
                        continue
                    token: Token = ("str" if "-" in text else "hex", hexed)
                    start, end = m.span(1)
                else:
                    token = ("date", m.group(2).decode())
                    dates.add(date.fromisoformat(token[1]))
                    start, end = m.span(2)
                literals.append(r.state[at:start])
                tokens.append(token)
                at = end
            literals.append(r.state[at:])
            self.records.append(
                TemplateRecord(
                    _uuid(r.originator_id).hex,
                    r.originator_version,
                    r.topic,
                    tuple(literals),
                    tuple(tokens),
                )
            )
        self.ids = sorted(ids)
        self.dates = sorted(d.isoformat() for d in dates)
        self.days = (max(dates) - min(dates)).days + 1 if dates else 1
        self.topics = Counter(r.topic.rsplit(":", 1)[-1] for r in self.records)

    def __len__(self) -> int:
        return len(self.records)

    def copy(self, k: int) -> list[StoredEvent]:
        """Copy k of the template."""
        fresh = {old: uuid.uuid5(COPY_NAMESPACE, f"{k}:{old}") for old in self.ids}
        sub: dict[Token, bytes] = {}
        for old, new in fresh.items():
            sub["hex", old] = new.hex.encode()
            sub["str", old] = str(new).encode()
        shift = timedelta(days=k * self.days)
        for day in self.dates:
            sub["date", day] = (date.fromisoformat(day) + shift).isoformat().encode()
        out: list[StoredEvent] = []
        for r in self.records:
            if r.tokens:
                parts = [r.literals[0]]
                for token, literal in zip(r.tokens, r.literals[1:], strict=True):
                    parts.append(sub[token])
                    parts.append(literal)
                state = b"".join(parts)
            else:
                state = r.literals[0]
            out.append(StoredEvent(fresh[r.originator], r.version, r.topic, state))
        return out


def _uuid(value: uuid.UUID | str) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(value)


def write_log(
    env: dict[str, str],
    template: Template,
    events: int,
    batch_bytes: int,
    stops: tuple[int, ...] = (),
    at_stop: Callable[[int], None] | None = None,
) -> float:
    """Fill a fresh store's log with records copied from the template up to position
    `events`; seconds spent copying. At each of `stops` the copying pauses once the log's
    head is exactly there and `at_stop(head)` runs (untimed); what it appends takes the
    next positions and the copying resumes after it, mid-copy if need be."""
    log = EventLog(env)
    try:
        recorder = log.recorder
        assert isinstance(recorder, ApplicationRecorder)
        assert not recorder.max_notification_id(), "the benchmark store must be empty"
        records = (record for k in itertools.count() for record in template.copy(k))
        seconds = 0.0
        head = 0
        for stop in sorted({*stops, events}):
            t0 = time.perf_counter()
            while head < stop:
                pending: list[StoredEvent] = []
                size = 0
                while head + len(pending) < stop and size < batch_bytes:
                    pending.append(next(records))
                    size += len(pending[-1].state)
                recorder.insert_events(pending)
                head += len(pending)
            seconds += time.perf_counter() - t0
            found = recorder.max_notification_id()
            if found != stop:
                raise SystemExit(f"the log's head is {found}, wanted {stop}")
            if at_stop is not None and stop in stops:
                at_stop(stop)
                head = recorder.max_notification_id() or 0
        return seconds
    finally:
        log.close()


# --- 3. one measurement, in a fresh child process ---------------------------------------------
@dataclasses.dataclass(frozen=True)
class Job:
    store: str
    env: dict[str, str]
    database_url: str | None
    home: str
    events: int
    profile_events: int  # 0: no profile pass
    decoded: bool  # also the decoded-read floor (not at 1M: 25 s of `make bench`, same ratio)
    one_process: bool  # also a rebuild in this process alone (SQLite below 1M: the lanes' gain)

    @property
    def spec(self) -> ReadSideSpec:
        """The log and read store a process opens for this job, as `ais replay` does."""
        return ReadSideSpec(self.env, self.database_url, Path(self.home))


def read_raw(source: StoredEventSource, upto: int) -> tuple[int, float]:
    """Notifications 1..upto straight from the recorder, in the projector's batches."""
    recorder = source.log.recorder
    count, after = 0, 0
    t0 = time.perf_counter()
    while after < upto:
        batch = recorder.select_notifications(start=after + 1, limit=BATCH)
        if not batch:
            break
        count += sum(1 for n in batch if n.id <= upto)
        after = batch[-1].id
    return count, time.perf_counter() - t0


def read_decoded(source: StoredEventSource, upto: int) -> tuple[int, float]:
    """The projector's own read path: select, transcoder decode, LoggedEvent."""
    count, after = 0, 0
    t0 = time.perf_counter()
    while after < upto:
        batch = source.read(after=after, limit=BATCH)
        if not batch:
            break
        count += sum(1 for e in batch if e.position <= upto)
        after = batch[-1].position
    return count, time.perf_counter() - t0


def _rebuild(job: Job, store: SqlReadStore, source: StoredEventSource, **kw: Any) -> Any:
    """`rebuild()` as `ais replay` runs it: lanes in one process per core (`LANES`)."""
    return rebuild(
        source, store, all_projections(), lanes=LANES, elsewhere=process_lanes(job.spec), **kw
    )


def _profile_rebuild(
    job: Job, source: StoredEventSource, store: SqlReadStore, top: int = 30
) -> str:
    """The lane this process runs (the dearest), profiled; the others run beside it."""
    profiler = cProfile.Profile()
    profiler.enable()
    _rebuild(job, store, source, stop_at=job.profile_events)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def _timed(run: Callable[[Progress], ReplayResult]) -> tuple[ReplayResult, float, float]:
    """Wall seconds of a rebuild, and of what followed its last projected batch."""
    last_batch = [0.0]

    def progress(position: int, head: int) -> None:
        last_batch[0] = time.perf_counter()

    gc.collect()
    t0 = time.perf_counter()
    result = run(progress)
    seconds = time.perf_counter() - t0
    return result, seconds, (t0 + seconds - last_batch[0] if last_batch[0] else 0.0)


def measure(job: Job) -> dict[str, Any]:
    """Both floors, the rebuilds, the raw floor again; in its own process (see `run_job`)."""
    source, store = job.spec.open()
    try:
        read_raw(source, BATCH)  # warm up: connections, prepared statements
        read_decoded(source, BATCH)
        raw_n, raw_s = read_raw(source, job.events)
        dec_n, dec_s = read_decoded(source, job.events) if job.decoded else (0, 0.0)
        projections = all_projections()
        one_s = digest_s = 0.0
        if job.one_process:
            # progress runs after each projected batch: what follows the last one is the
            # digest of every read model
            _, one_s, digest_s = _timed(
                lambda progress: rebuild(source, store, projections, progress, job.events)
            )
        result, seconds, _ = _timed(
            lambda progress: _rebuild(job, store, source, progress=progress, stop_at=job.events)
        )
        peak_rss_kb = max(
            resource.getrusage(who).ru_maxrss
            for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        )
        positions = {p.name: store.position(p.name) for p in projections}
        if set(positions.values()) != {job.events}:
            raise RuntimeError(f"rebuild stopped short of {job.events}: {positions}")
        rows: dict[str, int] = {}
        with store.engine.connect() as conn:
            for p in projections:
                for name, table in store.tables(p).items():
                    rows[name] = int(
                        conn.execute(select(func.count()).select_from(table)).scalar_one()
                    )
        n, s = read_raw(source, job.events)
        raw_n, raw_s = raw_n + n, raw_s + s
        profile = _profile_rebuild(job, source, store) if job.profile_events else ""
    finally:
        source.close()
        store.close()
    return {
        "events": job.events,
        "seconds": seconds,
        "one_process_seconds": one_s,
        "digest_seconds": digest_s,
        "raw_events": raw_n,
        "raw_seconds": raw_s,
        "decoded_events": dec_n,
        "decoded_seconds": dec_s,
        "peak_rss_mb": peak_rss_kb / 1024,
        "rows": rows,
        "digest": result.digest,
        "profile": profile,
    }


def run_job(job: Job) -> dict[str, Any]:
    """`measure` in a fresh interpreter, so its peak RSS is the rebuild's alone (and not a
    daemon: the rebuild starts lane processes of its own)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        result: dict[str, Any] = pool.submit(measure, job).result()
    return result


# --- 4. stores ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Store:
    name: str
    env: dict[str, str]
    database_url: str | None
    home: str


@contextmanager
def sqlite_store() -> Iterator[Store]:
    with tempfile.TemporaryDirectory(prefix="ais-bench-replay-") as tmp:
        home = Path(tmp) / "home"
        yield Store("sqlite", eventsourcing_env(None, home), None, str(home))


@contextmanager
def postgres_store() -> Iterator[Store]:
    with (
        postgres_schema("bench_replay") as url,
        tempfile.TemporaryDirectory(prefix="ais-bench-replay-") as tmp,
    ):
        yield Store("postgres", eventsourcing_env(url, Path(tmp)), url, tmp)


def bench_store(
    store: Store, template: Template, sizes: Sizes, profile: bool, console: Console
) -> list[Figure]:
    largest = max(sizes.events)
    copies = math.ceil(largest / len(template))
    appended: dict[int, tuple[int, float]] = {}
    days = itertools.count(copies * template.days)  # after every copy's days, one per run

    def append(head: int) -> None:
        runs = [
            append_work(
                store.env,
                f"{ACCOUNT}-append-{size_label(head)}-{run}",
                START.date() + timedelta(days=next(days)),
                sizes.appended,
            )
            for run in range(APPEND_RUNS)
        ]
        appended[head] = min(runs, key=lambda r: r[1] / r[0])

    write_seconds = write_log(
        store.env, template, largest, WRITE_BATCH_BYTES[store.name], sizes.events, append
    )
    console.print(
        f"{store.name}: wrote {largest:,} events (up to {copies} template copies) in "
        f"{write_seconds:.1f} s ({largest / write_seconds:,.0f} events/s); appended "
        + ", ".join(
            f"{n:,} events at {size_label(head)} in {s:.2f} s" for head, (n, s) in appended.items()
        ),
        highlight=False,
    )
    figures: list[Figure] = []
    rebuilds: dict[int, tuple[int, float]] = {}
    target = TARGETS[store.name]
    for events in sorted(sizes.events):
        label = f"{store.name}_{size_label(events)}"
        job = Job(
            store.name,
            store.env,
            store.database_url,
            store.home,
            events,
            min(events, 100_000) if profile and events == largest else 0,
            decoded=events < 1_000_000,
            one_process=events < 1_000_000 and store.name == "sqlite",
        )
        r = run_job(job)
        rebuilds[events] = (events, r["seconds"])
        rate = events / r["seconds"]
        raw = r["raw_events"] / r["raw_seconds"]
        ratio = rate / raw
        figures += [
            Figure(
                f"replay_{label}_events_per_s",
                rate,
                "event/s",
                raw,
                ratio,
                target,
                ok=ratio >= target,
                note=f"rebuild() in lanes, {LANES} processes ÷ raw read; target ≥ {target:g}",
            ),
            Figure(
                f"read_raw_{label}_events_per_s",
                raw,
                "event/s",
                note="floor: select_notifications, batches of 1000",
            ),
            Figure(
                f"replay_{label}_peak_rss_mb",
                r["peak_rss_mb"],
                "MiB",
                note="ru_maxrss of the largest rebuilding process",
            ),
        ]
        if r["one_process_seconds"]:
            alone = events / r["one_process_seconds"]
            figures += [
                Figure(
                    f"replay_{label}_one_process_events_per_s",
                    alone,
                    "event/s",
                    raw,
                    alone / raw,
                    note="rebuild() in this process alone (--workers 1) ÷ raw read",
                ),
                Figure(
                    f"replay_{label}_digest_share",
                    r["digest_seconds"] / r["one_process_seconds"],
                    "fraction",
                    note="share of the one-process rebuild spent digesting the read models",
                ),
            ]
        if r["decoded_seconds"]:
            decoded = r["decoded_events"] / r["decoded_seconds"]
            figures.append(
                Figure(
                    f"read_decoded_{label}_events_per_s",
                    decoded,
                    "event/s",
                    raw,
                    decoded / raw,
                    note="StoredEventSource.read (decode) ÷ raw read",
                )
            )
        rows = ", ".join(f"{k} {v:,}" for k, v in sorted(r["rows"].items()))
        console.print(
            f"{store.name} {size_label(events)}: rebuild {r['seconds']:.2f} s in {LANES} "
            f"processes, {r['one_process_seconds']:.2f} s in one (digest "
            f"{r['digest_seconds']:.2f} s), raw read {r['raw_seconds'] / 2:.2f} s per pass, "
            f"decoded read {r['decoded_seconds']:.2f} s\n  rows: {rows}\n"
            f"  digest {r['digest']}",
            highlight=False,
        )
        if r["profile"]:
            console.print(
                f"profile of a rebuild of {job.profile_events:,} events:", highlight=False
            )
            console.print(r["profile"], markup=False, highlight=False)
    return (
        figures
        + scaling_figures("replay", store.name, rebuilds)
        + scaling_figures("append", store.name, appended)
    )


# --- output ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="2k and 10k events (smoke test)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile an extra rebuild (up to 100k events) per store",
    )
    parser.add_argument("--out", type=Path, help="also write the JSON list to this file")
    args = parser.parse_args(argv)
    # a plain `kill` unwinds like Ctrl-C, so the PostgreSQL schema and temp files go too
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    sizes = QUICK if args.quick else FULL
    console = Console(width=max(140, Console().width))
    started = time.perf_counter()

    t0 = time.perf_counter()
    template = Template(record_template(sizes.lifecycles))
    topics = ", ".join(f"{k} {v}" for k, v in sorted(template.topics.items()))
    console.print(
        f"template: {len(template):,} events from {sizes.lifecycles} order life cycles through "
        f"TradingApp in {time.perf_counter() - t0:.1f} s, {template.days} day(s), "
        f"{len(template.ids)} aggregates\n  {topics}",
        highlight=False,
    )
    stores: list[Callable[[], Any]] = [sqlite_store]
    unreachable = postgres_reachable()
    if unreachable is None:
        stores.append(postgres_store)
    figures: list[Figure] = []
    for make_store in stores:
        with make_store() as store:
            figures += bench_store(store, template, sizes, args.profile, console)
    if unreachable is not None:
        console.print(f"[yellow]skipped PostgreSQL figures: {unreachable}[/]")
    mode = "quick" if args.quick else "full"
    return publish(
        console, figures, f"AIS replay ({mode}, {time.perf_counter() - started:.1f} s)", args.out
    )


if __name__ == "__main__":
    raise SystemExit(main())
