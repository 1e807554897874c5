"""Performance metrics: against an independent float/numpy computation from the fills and
marks of a real history, hand-computed fixtures, and the edge cases."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from application.errors import RiskRejected
from application.performance import (
    EquityPoint,
    Fill,
    PerformanceInputs,
    Summary,
    choose_period,
    decimal_text,
    inputs_from_read_models,
    max_drawdown,
    percentile,
    summarize,
    value_at_risk,
)
from application.trading import TradingApp
from domain.commands import CancelOrder, EndSession, PlaceOrder, StartSession
from domain.values import Mode, OrderType, Side
from tests.conftest import START, AppFactory, ReadModels

T0 = datetime(2024, 3, 1, tzinfo=START.tzinfo)
HOUR = timedelta(hours=1)
D = Decimal


def point(hours: float, nav: str | int | Decimal) -> EquityPoint:
    return EquityPoint(T0 + timedelta(hours=hours), D(nav))


def close(actual: Decimal | None, expected: float, rel: float = 1e-9) -> bool:
    assert actual is not None
    return bool(float(actual) == pytest.approx(expected, rel=rel, abs=1e-15))


# --- a real history, and the same numbers computed independently ------------------------------


@dataclass
class Tape:
    """What the test did, in plain floats: the capital, every mark and every fill."""

    capital: float
    started_at: datetime
    marks: list[tuple[datetime, str, float]] = field(default_factory=list)
    # (index of the last mark before the fill, instrument, side, quantity, price, fee)
    fills: list[tuple[int, str, str, float, float, float]] = field(default_factory=list)
    fees: Decimal = Decimal(0)
    orders: int = 0


class Trader:
    def __init__(self, app: TradingApp, capital: str = "100000") -> None:
        self.app = app
        self.clock: Any = app.clock
        self.session_id = app.ids()
        app.execute(
            StartSession(
                session_id=self.session_id,
                mode=Mode.BACKTEST,
                starting_capital=D(capital),
                config_digest="perf-test",
            )
        )
        self.tape = Tape(float(capital), self.clock())
        self.marks: dict[str, Decimal] = {}
        self.counter = 0

    def mark(self, instrument: str, price: Decimal) -> None:
        self.app.observe_mark(instrument, price)
        self.marks[instrument] = price
        self.tape.marks.append((self.clock(), instrument, float(price)))

    def order(
        self, instrument: str, side: str, fills: list[str], quantity: str | None = None
    ) -> uuid.UUID:
        """A limit order at the current mark, filled in the given quantities (0.1 % fee)."""
        price = self.marks[instrument]
        order_id = self.app.ids()
        self.app.execute(
            PlaceOrder(
                order_id=order_id,
                session_id=self.session_id,
                instrument=instrument,
                side=Side(side),
                order_type=OrderType.LIMIT,
                quantity=D(quantity) if quantity else sum((D(q) for q in fills), D(0)),
                limit_price=price,
            )
        )
        self.tape.orders += 1
        for q in fills:
            fee = (D(q) * price * D("0.001")).quantize(D("0.00000001"))
            self.counter += 1
            self.app.record_fill(
                order_id,
                trade_id=f"t-{self.counter}",
                quantity=D(q),
                price=price,
                fee=fee,
                filled_at=self.clock(),
            )
            self.tape.fills.append(
                (len(self.tape.marks) - 1, instrument, side, float(q), float(price), float(fee))
            )
            self.tape.fees += fee
        return order_id


def trade_a_random_walk(app: TradingApp) -> tuple[Trader, dict[str, int]]:
    """~3 days of irregularly spaced BTC and ETH marks with buys, sells, a partial fill
    sequence, a canceled order and two refused orders."""
    trader = Trader(app)
    rng = random.Random(20240301)
    btc, eth = D(50000), D(3000)
    rejected: dict[str, int] = {}
    for step in range(75):
        if step:
            trader.clock.advance(60 * (30 + (step * 17) % 60))  # 30..89 minutes apart
            btc = (btc * D(f"{1 + rng.gauss(0.0004, 0.012):.6f}")).quantize(D("0.01"))
            eth = (eth * D(f"{1 + rng.gauss(-0.0002, 0.018):.6f}")).quantize(D("0.01"))
        trader.mark("BTC-USDT", btc)
        trader.mark("ETH-USDT", eth)
        if step == 2:
            trader.order("BTC-USDT", "BUY", ["0.05", "0.03", "0.02"])  # one order, 3 fills
        if step == 6:
            trader.order("ETH-USDT", "BUY", ["1.5"])
        if step == 9:
            for quantity, guard in (("3", "max_order_quantity"), ("0.2", "max_position_weight")):
                with pytest.raises(RiskRejected, match=guard):
                    trader.order("BTC-USDT", "BUY", [quantity])
                rejected[guard] = rejected.get(guard, 0) + 1
        if step == 20:
            placed = trader.order("BTC-USDT", "BUY", [], "0.01")  # placed, never filled, canceled
            app.execute(CancelOrder(order_id=placed, reason="test"))
        if step == 25:
            trader.order("BTC-USDT", "SELL", ["0.06"])
        if step == 40:
            trader.order("ETH-USDT", "SELL", ["2.5"])  # through zero: short 1 ETH
        if step == 55:
            trader.order("BTC-USDT", "BUY", ["0.04"])
        if step == 70:
            trader.order("ETH-USDT", "BUY", ["1"])
    return trader, rejected


def independent(tape: Tape, period_s: float, ppy: float) -> dict[str, float]:
    """NAV from the fills and marks in floats, then every metric with numpy."""
    cash = tape.capital
    held: dict[str, float] = {}
    last: dict[str, float] = {}
    times = [0.0]
    navs = [tape.capital]  # the opening equity at the session start
    for i, (at, instrument, price) in enumerate(tape.marks):
        last[instrument] = price
        # A fill after this mark moves cash and holdings; NAV is next observed at a mark.
        nav = cash + sum(q * last[name] for name, q in held.items() if q)
        times.append((at - tape.started_at).total_seconds())
        navs.append(nav)
        for after, name, side, q, p, fee in tape.fills:
            if after == i:
                signed = q if side == "BUY" else -q
                cash -= signed * p + fee
                held[name] = held.get(name, 0.0) + signed
    t = np.array(times)
    v = np.array(navs)
    n = int(t[-1] // period_s)
    grid = np.arange(1, n + 1) * period_s
    sampled = np.concatenate([[v[0]], v[np.searchsorted(t, grid, side="right") - 1]])
    r = sampled[1:] / sampled[:-1] - 1
    q5 = np.percentile(r, 5)
    years = t[-1] / (365 * 86400)
    twa = float(np.sum(v[:-1] * np.diff(t)) / t[-1])
    downside = float(np.sqrt(np.mean(np.minimum(r, 0) ** 2)))
    cagr = float((v[-1] / v[0]) ** (1 / years) - 1)
    mdd = float(np.max(1 - v / np.maximum.accumulate(v)))
    return {
        "final": float(v[-1]),
        "total_return": float(v[-1] / v[0] - 1),
        "cagr": cagr,
        "max_drawdown": mdd,
        "periods": float(len(r)),
        "sharpe": float(np.mean(r) / np.std(r, ddof=1) * np.sqrt(ppy)),
        "sortino": float(np.mean(r) / downside * np.sqrt(ppy)),
        "volatility": float(np.std(r, ddof=1) * np.sqrt(ppy)),
        "calmar": cagr / mdd,
        "var": float(-q5),
        "cvar": float(-np.mean(r[r <= q5])),
        "turnover": sum(abs(q * p) for _, _, _, q, p, _ in tape.fills) / twa,
        "average_nav": twa,
    }


def test_metrics_match_an_independent_computation_from_fills_and_marks(
    app: TradingApp, read_models: ReadModels
) -> None:
    trader, rejected = trade_a_random_walk(app)
    app.execute(EndSession(session_id=trader.session_id, reason="done"))
    read_models.projector().run_once()

    inputs = inputs_from_read_models(
        nav_history=read_models.rows("nav_history"),
        orders=read_models.rows("orders"),
        risk_decisions=read_models.rows("risk_decisions"),
        sessions=read_models.rows("sessions"),
        session_id=str(trader.session_id),
    )
    summary = summarize(inputs)
    # ~3 days: hourly returns are the largest period giving at least 30 of them.
    assert summary.period_seconds == 3600 and summary.periods_per_year == 8760
    expected = independent(trader.tape, 3600.0, 8760.0)

    assert summary.periods == expected["periods"] >= 30
    assert close(summary.final_equity, expected["final"], 1e-12)
    assert summary.starting_equity == D(100000)
    for name, actual in (
        ("total_return", summary.total_return),
        ("cagr", summary.cagr),
        ("max_drawdown", summary.max_drawdown),
        ("sharpe", summary.sharpe),
        ("sortino", summary.sortino),
        ("volatility", summary.volatility),
        ("calmar", summary.calmar),
        ("var", summary.var_95),
        ("cvar", summary.cvar_95),
        ("turnover", summary.turnover),
        ("average_nav", summary.average_nav),
    ):
        assert close(actual, expected[name], 1e-8), (name, actual, expected[name])
    assert summary.max_drawdown > 0 and summary.var_95 is not None and summary.var_95 > 0
    assert summary.fees == trader.tape.fees  # exact: sums of the fees as recorded
    assert summary.orders == trader.tape.orders == 7  # a refused order does not exist
    assert summary.fills == len(trader.tape.fills) == 8
    assert (
        dict(summary.rejections)
        == rejected
        == {
            "max_order_quantity": 1,
            "max_position_weight": 1,
        }
    )
    assert summary.currency == "USDT"

    # An explicit annualization gives the same resampling here.
    assert summarize(inputs, periods_per_year=8760) == summary
    daily = summarize(inputs, periods_per_year=365)
    assert daily.period_seconds == 86400 and daily.periods == 3
    again = independent(trader.tape, 86400.0, 365.0)
    assert close(daily.sharpe, again["sharpe"], 1e-8)


def test_a_session_report_sees_only_that_session(
    make_app: AppFactory, read_models: ReadModels
) -> None:
    app = make_app()
    first = Trader(app)
    first.mark("BTC-USDT", D(50000))
    first.order("BTC-USDT", "BUY", ["0.1"])
    first.clock.advance(600)
    first.mark("BTC-USDT", D(51000))
    first.order("BTC-USDT", "SELL", ["0.1"])
    first.mark("BTC-USDT", D(51000))  # the curve is the NAV at marks
    app.execute(EndSession(session_id=first.session_id, reason="first done"))
    first.clock.advance(600)
    second = Trader(app, capital="80000")
    second.mark("BTC-USDT", D(52000))
    placed = second.order("BTC-USDT", "BUY", [], "0.01")
    app.execute(CancelOrder(order_id=placed, reason="changed my mind"))
    second.clock.advance(600)
    second.mark("BTC-USDT", D(52500))
    read_models.projector().run_once()

    rows = {
        "nav_history": read_models.rows("nav_history"),
        "orders": read_models.rows("orders"),
        "risk_decisions": read_models.rows("risk_decisions"),
        "sessions": read_models.rows("sessions"),
    }
    two = summarize(inputs_from_read_models(**rows, session_id=str(second.session_id)))
    assert (two.starting_equity, two.final_equity) == (D(80000), D(80000))
    assert (two.orders, two.fills, two.fees, two.traded_notional) == (1, 0, D(0), D(0))
    assert two.start == second.tape.started_at and two.max_drawdown == 0
    one = summarize(inputs_from_read_models(**rows, session_id=str(first.session_id)))
    assert (one.orders, one.fills) == (2, 2)
    assert one.fees == D("5.0") + D("5.1")
    assert one.final_equity == D(100000) + D(100) - D("10.1")
    with pytest.raises(ValueError, match="unknown session"):
        inputs_from_read_models(**rows, session_id="nope")


# --- hand-computed fixtures ----------------------------------------------------------------------


def test_max_drawdown_by_hand() -> None:
    # peak 120 at 1 h, trough 80 at 4 h: 1 - 80/120 = 1/3; the later dip 130 -> 104 is 20 %.
    curve = [point(0, 100), point(1, 120), point(2, 90), point(3, 110), point(4, 80)]
    curve += [point(5, 130), point(6, 104)]
    mdd, peak_at, trough_at = max_drawdown(curve)
    assert mdd == 1 - D(80) / D(120)
    assert (peak_at, trough_at) == (T0 + HOUR, T0 + 4 * HOUR)
    summary = summarize(PerformanceInputs(curve))
    assert summary.max_drawdown == mdd
    assert summary.total_return == D("0.04")
    # Starting capital above the first NAV is the first peak (fees before the first mark).
    assert summarize(PerformanceInputs([point(0, 95)], starting_capital=D(100))).max_drawdown == (
        D("0.05")
    )


def test_turnover_by_hand() -> None:
    # NAV 1000 for an hour, 1100 for an hour, then 900: time-weighted average 1050.
    curve = [point(0, 1000), point(1, 1100), point(2, 900)]
    fills = [
        Fill("BTC-USDT", D(1), D(100), D("0.1"), side="BUY"),
        Fill("BTC-USDT", D(-2), D(50), D("0.1"), side="SELL"),  # |notional| counts
        Fill("ETH-USDT", D(3), D(0), D(0), notional=D(400)),  # an order's exact notional
    ]
    summary = summarize(PerformanceInputs(curve, fills, order_count=2))
    assert summary.average_nav == D(1050)
    assert summary.traded_notional == D(600)
    assert summary.turnover == D(600) / D(1050)
    assert summary.fees == D("0.2")
    assert (summary.orders, summary.fills) == (2, 3)


def test_cagr_sharpe_sortino_var_by_hand() -> None:
    # 100 -> 121 over exactly two 365-day years: 10 % a year.
    two_years = summarize(
        PerformanceInputs([point(0, 100), point(2 * 365 * 24, 121)]), periods_per_year=1
    )
    assert two_years.cagr is not None and abs(two_years.cagr - D("0.1")) < D("1e-25")
    assert two_years.periods == 2 and two_years.period_seconds == 365 * 86400
    # Daily returns +10 %, -10 %, +10 %, -10 %: mean 0 -> Sharpe 0, Sortino 0.
    navs = ["100", "110", "99", "108.9", "98.01"]
    flatish = summarize(PerformanceInputs([point(24 * i, v) for i, v in enumerate(navs)]), 365)
    assert flatish.mean_period_return == 0 and flatish.sharpe == 0 and flatish.sortino == 0
    # std of (.1, -.1, .1, -.1) with ddof 1 = sqrt(.04/3); annualized by sqrt(365)
    assert flatish.volatility == (D("0.04") / 3).sqrt() * D(365).sqrt()
    # sorted returns -.1 -.1 .1 .1; h = 3 × 0.05 = 0.15 -> Q = -.1 + .15 × 0 = -.1
    assert (flatish.var_95, flatish.cvar_95) == (D("0.1"), D("0.1"))
    # Sortino by hand: returns +.02, -.01, +.05, -.03 -> mean .0075, DD = sqrt(.001/4)
    navs = ["100", "102", "100.98", "106.029", "102.84813"]
    s = summarize(PerformanceInputs([point(24 * i, v) for i, v in enumerate(navs)]), 365)
    assert s.sortino == D("0.0075") / (D("0.001") / 4).sqrt() * D(365).sqrt()


def test_percentile_matches_numpy_linear() -> None:
    rng = random.Random(7)
    for n in (1, 2, 3, 20, 101):
        xs = [D(str(round(rng.uniform(-0.05, 0.05), 6))) for _ in range(n)]
        for q in ("0.05", "0.5", "0.95"):
            expected = np.percentile([float(x) for x in xs], float(q) * 100)
            assert float(percentile(xs, D(q))) == pytest.approx(expected, rel=1e-12, abs=1e-15)
    var, cvar = value_at_risk([D("-0.04"), D("-0.02"), D("0.01"), D("0.03")])
    # h = 3 × .05 = .15: Q = -.04 + .15 × .02 = -.037; tail {-.04}
    assert (var, cvar) == (D("0.037"), D("0.04"))


def test_period_choice() -> None:
    assert choose_period(timedelta(days=40)) == timedelta(days=1)
    assert choose_period(timedelta(days=3)) == HOUR
    assert choose_period(timedelta(hours=3)) == timedelta(minutes=5)
    assert choose_period(timedelta(minutes=20)) == timedelta(minutes=1)
    assert choose_period(timedelta(days=3), 365) == timedelta(days=1)
    assert choose_period(timedelta(0), 525600) == timedelta(minutes=1)
    with pytest.raises(ValueError):
        choose_period(timedelta(days=1), 0)


# --- edge cases ----------------------------------------------------------------------------------


def test_flat_curve_has_no_sharpe_and_no_division_by_zero() -> None:
    summary = summarize(PerformanceInputs([point(h, "1000") for h in range(48)]))
    assert summary.periods == 47 and summary.period_seconds == 3600
    assert summary.total_return == 0 and summary.max_drawdown == 0
    assert summary.sharpe is None and summary.sortino is None and summary.calmar is None
    assert summary.volatility == 0 and summary.cagr == 0
    assert (summary.var_95, summary.cvar_95) == (D(0), D(0))
    assert summary.turnover == 0
    text = summary.to_dict()
    assert text["var_95"] == "0" and text["cvar_95"] == "0" and text["sharpe"] is None
    assert not any(isinstance(v, str) and v.startswith("-0") for v in text.values())


def test_single_point() -> None:
    summary = summarize(
        PerformanceInputs([point(0, "5000")], [Fill("BTC-USDT", D(1), D(500), D(1))])
    )
    assert summary.periods == 0 and summary.span_days == 0
    assert summary.total_return == 0 and summary.max_drawdown == 0
    assert summary.cagr is None and summary.calmar is None
    assert summary.sharpe is None and summary.sortino is None and summary.volatility is None
    assert summary.var_95 is None and summary.cvar_95 is None and summary.mean_period_return is None
    assert summary.turnover == D("0.1") and summary.average_nav == 5000


def test_all_loss_curve() -> None:
    navs = [D(1000)]
    for i in range(39):  # every hour loses between 1 % and 1.4 %
        navs.append((navs[-1] * (D("0.99") - D("0.002") * (i % 3))).quantize(D("0.01")))
    curve = [point(h, v) for h, v in enumerate(navs)]
    summary = summarize(PerformanceInputs(curve))
    first, last = D(curve[0].nav), D(curve[-1].nav)
    assert summary.total_return == last / first - 1 < 0
    assert summary.max_drawdown == 1 - last / first  # the peak is the first point
    assert summary.max_drawdown_peak_at == T0 and summary.max_drawdown_trough_at == curve[-1].at
    assert summary.sharpe is not None and summary.sharpe < 0
    assert summary.sortino is not None and summary.sortino < 0
    assert summary.calmar is not None and summary.calmar < 0
    assert summary.var_95 is not None and summary.var_95 > 0
    assert summary.cvar_95 is not None and summary.cvar_95 >= summary.var_95
    assert summary.cagr is not None and -1 <= summary.cagr < 0  # -32 % in 39 h: ~ -100 %/y


def test_ruin_and_absurd_annualization() -> None:
    ruined = summarize(PerformanceInputs([point(0, 100), point(1, 50), point(2, 0)]))
    assert ruined.cagr == -1 and ruined.max_drawdown == 1 and ruined.total_return == -1
    # Doubling in one minute annualizes to 2**525600: not a number worth printing.
    tiny = summarize(PerformanceInputs([point(0, 100), point(1 / 60, 200)]))
    assert tiny.cagr is None and tiny.calmar is None and tiny.total_return == 1


def test_invalid_inputs() -> None:
    with pytest.raises(ValueError, match="no equity points"):
        summarize(PerformanceInputs([]))
    with pytest.raises(ValueError, match="positive"):
        summarize(PerformanceInputs([point(0, 0), point(1, 10)]))


def test_points_at_the_same_time_and_out_of_order() -> None:
    curve = [point(2, 90), point(0, 100), point(0, 100), point(1, 120)]
    summary = summarize(PerformanceInputs(curve))
    assert summary.start == T0 and summary.end == T0 + 2 * HOUR
    assert summary.max_drawdown == D("0.25") and summary.final_equity == 90


def test_summary_round_trips_through_its_dict() -> None:
    curve = [point(h, 1000 + (h * 37) % 11 - 5) for h in range(50)]
    summary = summarize(
        PerformanceInputs(
            curve,
            [Fill("ETH-USDT", D("1.5"), D("3000.10"), D("4.5"))],
            order_count=1,
            rejections={"stale_mark": 2, "max_drawdown": 1},
            starting_capital=D(1000),
            currency="USDT",
        )
    )
    data = summary.to_dict()
    assert all(v is None or isinstance(v, str | dict) for v in data.values())
    assert Summary.from_dict(data) == summary
    assert list(summary.rejections) == ["max_drawdown", "stale_mark"]
    assert decimal_text(D("-0")) == "0" and decimal_text(D("1E-7")) == "0.0000001"
