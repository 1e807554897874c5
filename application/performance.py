"""Performance summary of a trading history: pure functions over an equity curve and fills.

Everything here is exact `Decimal` arithmetic in a fixed local context (28 significant
digits, ROUND_HALF_EVEN), so the same inputs give the same digits on every machine.
Square roots, logarithms and exponentials are Decimal operations too; nothing is a float.
Results are *not* quantized here: quantizing is a display concern (see `adapters.report`).

Definitions used throughout (every formula is repeated on the function computing it):

* **Equity curve** — the points ``(t_i, V_i)`` (NAV in the quote currency), sorted by time
  (stable: points with the same time keep their log order). When ``starting_capital`` is
  given it is prepended as the *opening equity* ``E0`` at the time of the first point, the
  way the portfolio projection starts its high-water mark at the funded NAV. Otherwise
  ``E0`` is the first point's NAV.
* **Period returns** — the curve is resampled to a fixed period ``P`` on the grid
  ``g_k = t_0 + k·P``: ``V(g_0) = E0`` and, for ``k ≥ 1``, ``V(g_k)`` is the NAV of the last
  point with ``t_i ≤ g_k`` (the NAV is a step function between marks). The returns are
  ``r_k = V(g_k) / V(g_{k-1}) − 1`` for ``k = 1..n``, ``n = ⌊(t_last − t_0) / P⌋``; a trailing
  partial period is left out. ``P`` is chosen automatically (below) unless
  ``periods_per_year`` is given, in which case ``P = 365 days / periods_per_year``.
* **Automatic period** — the largest of 1 day, 1 hour, 5 minutes, 1 minute giving at least
  ``MIN_PERIODS`` (30) returns; 1 minute (the finest bar of the bundled data) otherwise.
  Crypto trades around the clock, so a year is 365 days of 24 h and
  ``periods_per_year = 365 × 86400 s / P`` (365 for daily, 8760 hourly, 105120 for 5 min).
* The risk-free rate is 0 for Sharpe and Sortino, and the Sortino target return is 0.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Context, Decimal, localcontext
from typing import Any

ZERO = Decimal(0)
ONE = Decimal(1)
YEAR = timedelta(days=365)
MIN_PERIODS = 30
PERIOD_LADDER = (timedelta(days=1), timedelta(hours=1), timedelta(minutes=5), timedelta(minutes=1))
VAR_LEVEL = Decimal("0.95")
# CAGR is left out (None) when the annualized growth would exceed e**MAX_LOG_GROWTH
# (about 10**15-fold a year): on a span of minutes the annualized figure is noise, and its
# exact decimal expansion would run to thousands of digits.
MAX_LOG_GROWTH = Decimal(34)
FILL_COMMAND = "RecordFill"
_CONTEXT = Context(prec=28, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class EquityPoint:
    at: datetime
    nav: Decimal


@dataclass(frozen=True)
class Fill:
    """One fill, or several fills of one order aggregated (then ``notional`` is their sum).

    ``notional`` overrides ``|quantity × price|`` when given, so an order row's exact
    ``filled_notional`` can be used instead of ``filled_quantity × average_price``.
    """

    instrument: str
    quantity: Decimal
    price: Decimal
    fee: Decimal
    side: str | None = None
    at: datetime | None = None
    notional: Decimal | None = None

    @property
    def traded_notional(self) -> Decimal:
        """|quantity × price| in the quote currency (or the given exact notional)."""
        if self.notional is not None:
            return abs(self.notional)
        return abs(self.quantity * self.price)


@dataclass(frozen=True)
class PerformanceInputs:
    """What the summary is computed from: a NAV curve, fills, counts, and rejections."""

    equity: Sequence[EquityPoint]
    fills: Sequence[Fill] = ()
    order_count: int = 0
    fill_count: int | None = None  # None: len(fills)
    rejections: Mapping[str, int] = field(default_factory=dict)  # guard -> count
    starting_capital: Decimal | None = None
    currency: str = ""
    kill_switch_engagements: int = 0


@dataclass(frozen=True)
class Summary:
    """Report numbers. Ratios are fractions (0.05 = 5 %), money is in ``currency``.

    Optional metrics are None when undefined (e.g. Sharpe of a flat curve, CAGR of a curve
    spanning no time); nothing is ever a division by zero.
    """

    start: datetime
    end: datetime
    span_days: Decimal
    starting_equity: Decimal
    final_equity: Decimal
    total_return: Decimal
    cagr: Decimal | None
    max_drawdown: Decimal
    max_drawdown_peak_at: datetime | None
    max_drawdown_trough_at: datetime | None
    period_seconds: Decimal
    periods_per_year: Decimal
    periods: int
    mean_period_return: Decimal | None
    volatility: Decimal | None
    sharpe: Decimal | None
    sortino: Decimal | None
    calmar: Decimal | None
    var_95: Decimal | None
    cvar_95: Decimal | None
    traded_notional: Decimal
    average_nav: Decimal
    turnover: Decimal | None
    fees: Decimal
    orders: int
    fills: int
    rejections: Mapping[str, int]
    kill_switch_engagements: int
    currency: str

    @property
    def rejected(self) -> int:
        return sum(self.rejections.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: numbers as exact strings (Decimal text without exponent), times ISO."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "rejections":
                out[f.name] = {guard: str(n) for guard, n in sorted(value.items())}
            elif isinstance(value, Decimal):
                out[f.name] = decimal_text(value)
            elif isinstance(value, datetime):
                out[f.name] = value.isoformat()
            elif isinstance(value, int):
                out[f.name] = str(value)
            else:
                out[f.name] = value  # str or None
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Summary:
        """Inverse of `to_dict` (exact: the strings are the Decimals' own digits)."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = data[f.name]
            kind = str(f.type)
            if raw is None:
                values[f.name] = None
            elif f.name == "rejections":
                values[f.name] = {guard: int(n) for guard, n in raw.items()}
            elif kind.startswith("datetime"):
                values[f.name] = datetime.fromisoformat(raw)
            elif kind.startswith("Decimal"):
                values[f.name] = Decimal(raw)
            elif kind == "int":
                values[f.name] = int(raw)
            else:
                values[f.name] = raw
        return cls(**values)


def decimal_text(value: Decimal) -> str:
    """Exact decimal text without exponent notation, and never "-0"."""
    return "0" if value == 0 else format(value, "f")


def _seconds(span: timedelta) -> Decimal:
    return Decimal(span.days * 86400 + span.seconds) + Decimal(span.microseconds) / 1_000_000


def curve(inputs: PerformanceInputs) -> list[EquityPoint]:
    """The effective equity curve: points sorted by time, opening equity first.

    ``starting_capital`` (when given) is prepended at the first point's time; see the
    module docstring. Raises ValueError for an empty curve or a non-positive opening equity.
    """
    points = sorted(inputs.equity, key=lambda p: p.at)
    if not points:
        raise ValueError("no equity points: the history has no marked NAV")
    if inputs.starting_capital is not None:
        points.insert(0, EquityPoint(points[0].at, inputs.starting_capital))
    if points[0].nav <= 0:
        raise ValueError(f"opening equity must be positive, got {points[0].nav}")
    return points


def drawdown_series(points: Sequence[EquityPoint]) -> list[tuple[datetime, Decimal]]:
    """Drawdown at every point: ``d_i = 1 − V_i / max_{j ≤ i} V_j`` (0 at a new high)."""
    out: list[tuple[datetime, Decimal]] = []
    with localcontext(_CONTEXT):
        peak: Decimal | None = None
        for p in points:
            peak = p.nav if peak is None or p.nav > peak else peak
            out.append((p.at, ONE - p.nav / peak if peak > 0 else ZERO))
    return out


def max_drawdown(points: Sequence[EquityPoint]) -> tuple[Decimal, datetime | None, datetime | None]:
    """Peak-to-trough: ``MDD = max_i (1 − V_i / max_{j ≤ i} V_j)``, with its peak and trough.

    Computed on every point of the curve (not the resampled one), so a dip between two
    sampling times counts. Returns (0, None, None) for a curve that never falls.
    """
    worst, peak_at, trough_at = ZERO, None, None
    with localcontext(_CONTEXT):
        peak: EquityPoint | None = None
        for p in points:
            if peak is None or p.nav > peak.nav:
                peak = p
            dd = ONE - p.nav / peak.nav if peak.nav > 0 else ZERO
            if dd > worst:
                worst, peak_at, trough_at = dd, peak.at, p.at
    return worst, peak_at, trough_at


def choose_period(span: timedelta, periods_per_year: int | Decimal | None = None) -> timedelta:
    """``365 days / periods_per_year`` when given, else the automatic period (module doc)."""
    if periods_per_year is not None:
        if periods_per_year <= 0:
            raise ValueError("periods_per_year must be positive")
        micro = (_seconds(YEAR) * 1_000_000 / Decimal(periods_per_year)).to_integral_value()
        if micro <= 0:
            raise ValueError("periods_per_year gives a period shorter than a microsecond")
        return timedelta(microseconds=int(micro))
    for period in PERIOD_LADDER:
        if span // period >= MIN_PERIODS:
            return period
    return PERIOD_LADDER[-1]


def resample(points: Sequence[EquityPoint], period: timedelta) -> list[Decimal]:
    """``[V(g_0), V(g_1), ..., V(g_n)]`` on the grid ``g_k = t_0 + k·P`` (module doc)."""
    if not points:
        return []
    times = [p.at for p in points]
    t0 = times[0]
    n = (times[-1] - t0) // period
    values = [points[0].nav]
    for k in range(1, n + 1):
        index = bisect.bisect_right(times, t0 + k * period) - 1
        values.append(points[index].nav)
    return values


def period_returns(values: Sequence[Decimal]) -> list[Decimal]:
    """``r_k = V_k / V_{k-1} − 1``; a period starting at a non-positive NAV returns −1."""
    with localcontext(_CONTEXT):
        return [
            (cur / prev - ONE) if prev > 0 else -ONE for prev, cur in itertools.pairwise(values)
        ]


def mean(xs: Sequence[Decimal]) -> Decimal:
    """Arithmetic mean ``Σx / n`` (n ≥ 1)."""
    with localcontext(_CONTEXT):
        return sum(xs, ZERO) / len(xs)


def sample_std(xs: Sequence[Decimal]) -> Decimal:
    """Sample standard deviation ``sqrt(Σ(x − x̄)² / (n − 1))`` (n ≥ 2), as numpy ddof=1."""
    with localcontext(_CONTEXT):
        m = mean(xs)
        return (sum(((x - m) ** 2 for x in xs), ZERO) / (len(xs) - 1)).sqrt()


def downside_deviation(xs: Sequence[Decimal]) -> Decimal:
    """Target-0 downside deviation ``sqrt(Σ min(r, 0)² / n)`` over all n returns."""
    with localcontext(_CONTEXT):
        return (sum((min(x, ZERO) ** 2 for x in xs), ZERO) / len(xs)).sqrt()


def percentile(xs: Sequence[Decimal], q: Decimal) -> Decimal:
    """Empirical quantile with linear interpolation (numpy's default, Hyndman–Fan type 7).

    For sorted ``x_0 ≤ … ≤ x_{n-1}``: ``h = (n − 1)·q``, ``i = ⌊h⌋``,
    ``Q = x_i + (h − i)·(x_{i+1} − x_i)`` (``x_i`` itself when ``i = n − 1``).
    """
    ordered = sorted(xs)
    with localcontext(_CONTEXT):
        h = (len(ordered) - 1) * q
        i = int(h.to_integral_value(rounding=ROUND_FLOOR))
        if i >= len(ordered) - 1:
            return ordered[-1]
        return ordered[i] + (h - i) * (ordered[i + 1] - ordered[i])


def value_at_risk(
    returns: Sequence[Decimal], level: Decimal = VAR_LEVEL
) -> tuple[Decimal, Decimal]:
    """Historical VaR and CVaR (expected shortfall) of period returns, as loss fractions.

    ``Q = percentile(r, 1 − level)``; ``VaR = −Q``; ``CVaR = −mean{r_k : r_k ≤ Q}`` (never
    empty: the smallest return is ≤ Q). Positive numbers are losses; a negative VaR means
    even the worst 5 % of periods gained.
    """
    with localcontext(_CONTEXT):
        q = percentile(returns, ONE - level)
        tail = [r for r in returns if r <= q]
        return ZERO - q, ZERO - mean(tail)


def time_weighted_average(points: Sequence[EquityPoint]) -> Decimal:
    """Average NAV of the step curve: ``Σ V_i·(t_{i+1} − t_i) / (t_last − t_0)``.

    The NAV holds from one point to the next. A curve spanning no time averages to its
    last NAV.
    """
    with localcontext(_CONTEXT):
        span = _seconds(points[-1].at - points[0].at)
        if span == 0:
            return points[-1].nav
        weighted = sum(
            (a.nav * _seconds(b.at - a.at) for a, b in itertools.pairwise(points)),
            ZERO,
        )
        return weighted / span


def cagr(first: Decimal, last: Decimal, span: timedelta) -> Decimal | None:
    """Compound annual growth: ``(V_last / E0) ** (1 / years) − 1``, ``years = span / 365 d``.

    Computed as ``exp(ln(V_last / E0) / years) − 1``. None for a zero span or when the
    annual log growth exceeds ``MAX_LOG_GROWTH``; −1 when the final equity is not positive.
    """
    with localcontext(_CONTEXT):
        years = _seconds(span) / _seconds(YEAR)
        if years <= 0:
            return None
        if last <= 0:
            return -ONE
        growth = (last / first).ln() / years
        if growth > MAX_LOG_GROWTH:
            return None
        return growth.exp() - ONE


def summarize(inputs: PerformanceInputs, periods_per_year: int | Decimal | None = None) -> Summary:
    """Every report metric, from the effective curve (`curve`) and the fills.

    * total return ``= V_last / E0 − 1``; CAGR, see `cagr` (from the curve's real span);
    * max drawdown, see `max_drawdown`;
    * period returns ``r_1..r_n`` (module doc), ``N = periods_per_year``:
      mean ``r̄``; volatility ``= s·√N`` with ``s`` the sample std (ddof 1);
      Sharpe ``= r̄ / s · √N`` (risk-free 0; None when n < 2 or s = 0);
      Sortino ``= r̄ / DD · √N`` with DD the target-0 downside deviation (None when n < 2
      or no period lost);
    * Calmar ``= CAGR / max drawdown`` (None when either is undefined or the MDD is 0);
    * VaR / CVaR 95 %, see `value_at_risk` (None without a return);
    * turnover ``= Σ |fill notional| / average NAV`` over the whole history (not annualized),
      average NAV time-weighted, see `time_weighted_average`;
    * fees ``= Σ fee``; orders, fills and rejections by guard as counted by the caller.
    """
    points = curve(inputs)
    start, end = points[0].at, points[-1].at
    period = choose_period(end - start, periods_per_year)
    with localcontext(_CONTEXT):
        ppy = _seconds(YEAR) / _seconds(period)
        e0, last = points[0].nav, points[-1].nav
        total_return = last / e0 - ONE
        growth = cagr(e0, last, end - start)
        mdd, peak_at, trough_at = max_drawdown(points)
        returns = period_returns(resample(points, period))
        root = ppy.sqrt()
        mean_r = mean(returns) if returns else None
        std = sample_std(returns) if len(returns) >= 2 else None
        sharpe = mean_r / std * root if mean_r is not None and std else None
        downside = downside_deviation(returns) if len(returns) >= 2 else None
        sortino = mean_r / downside * root if mean_r is not None and downside else None
        calmar = growth / mdd if growth is not None and mdd > 0 else None
        var, cvar = value_at_risk(returns) if returns else (None, None)
        traded = sum((f.traded_notional for f in inputs.fills), ZERO)
        average = time_weighted_average(points)
        return Summary(
            start=start,
            end=end,
            span_days=_seconds(end - start) / 86400,
            starting_equity=e0,
            final_equity=last,
            total_return=total_return,
            cagr=growth,
            max_drawdown=mdd,
            max_drawdown_peak_at=peak_at,
            max_drawdown_trough_at=trough_at,
            period_seconds=_seconds(period),
            periods_per_year=ppy,
            periods=len(returns),
            mean_period_return=mean_r,
            volatility=std * root if std is not None else None,
            sharpe=sharpe,
            sortino=sortino,
            calmar=calmar,
            var_95=var,
            cvar_95=cvar,
            traded_notional=traded,
            average_nav=average,
            turnover=traded / average if average > 0 else None,
            fees=sum((f.fee for f in inputs.fills), ZERO),
            orders=inputs.order_count,
            fills=len(inputs.fills) if inputs.fill_count is None else inputs.fill_count,
            rejections=dict(sorted(inputs.rejections.items())),
            kill_switch_engagements=inputs.kill_switch_engagements,
            currency=inputs.currency,
        )


# --- from read-model rows -------------------------------------------------------------------

Row = Mapping[str, Any]


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _quote(instruments: Iterable[str]) -> str:
    quotes = {i.rsplit("-", 1)[-1] for i in instruments if "-" in i}
    return quotes.pop() if len(quotes) == 1 else ""


def _session_window(session_id: str, decisions: Sequence[Row]) -> tuple[int, float | int]:
    """Log positions bounding a session: its StartSession approval up to its EndSession
    approval, or the next session's StartSession approval, or the end of the log."""
    starts = sorted(
        (int(d["position"]), str(d["target_id"]))
        for d in decisions
        if d["decision"] == "APPROVED" and d["command_type"] == "StartSession"
    )
    lo = next((pos for pos, target in starts if target == session_id), 0)
    ends = [
        int(d["position"])
        for d in decisions
        if d["decision"] == "APPROVED"
        and d["command_type"] == "EndSession"
        and str(d["target_id"]) == session_id
        and int(d["position"]) > lo
    ]
    later = [pos for pos, target in starts if pos > lo and target != session_id]
    hi: float | int = min([*ends, *later], default=float("inf"))
    return lo, hi


def inputs_from_read_models(
    *,
    nav_history: Sequence[Row],
    orders: Sequence[Row],
    risk_decisions: Sequence[Row],
    sessions: Sequence[Row] = (),
    session_id: str | None = None,
) -> PerformanceInputs:
    """`PerformanceInputs` from read-model rows as `SqlReadStore.dump` yields them.

    * equity: ``(at, nav)`` of every ``nav_history`` row;
    * fills: one aggregated `Fill` per order with a filled quantity (``filled_quantity``,
      ``average_price``, ``fees``, exact ``filled_notional``) — turnover and fees are sums,
      so aggregating per order changes neither;
    * fill count: approved ``RecordFill`` decisions (one per applied exchange fill);
    * rejections: ``REJECTED`` decisions counted by guard; kill-switch engagements counted;
    * starting capital: the session's ``starting_capital``, at its ``started_at``.

    With ``session_id`` (or when ``sessions`` holds exactly one session) only that
    session's history is used: orders by ``session_id``; marks and decisions by log
    position, from the session's StartSession approval up to its EndSession approval (or
    the next session's start). Without a session, the whole account history is used and
    the opening equity is the first NAV.
    """
    session: Row | None = None
    if session_id is None and len(sessions) == 1:
        session_id = str(sessions[0]["session_id"])
    if session_id is not None:
        session = next((s for s in sessions if str(s["session_id"]) == session_id), None)
        if session is None and sessions:
            raise ValueError(f"unknown session {session_id}")
    lo, hi = _session_window(session_id, risk_decisions) if session_id else (0, float("inf"))

    def inside(row: Row) -> bool:
        return lo <= int(row["position"]) <= hi

    equity = [
        EquityPoint(datetime.fromisoformat(str(r["at"])), _decimal(r["nav"]))
        for r in sorted(nav_history, key=lambda r: int(r["position"]))
        if inside(r)
    ]
    chosen = [o for o in orders if session_id is None or str(o["session_id"]) == session_id]
    fills = [
        Fill(
            instrument=str(o["instrument"]),
            side=str(o["side"]),
            quantity=_decimal(o["filled_quantity"]),
            price=_decimal(o["average_price"]),
            fee=_decimal(o["fees"]),
            notional=_decimal(o["filled_notional"]),
        )
        for o in sorted(chosen, key=lambda o: str(o["order_id"]))
        if _decimal(o["filled_quantity"]) != 0
    ]
    decisions = [d for d in risk_decisions if inside(d)]
    order_ids = {str(o["order_id"]) for o in chosen}
    fill_count = sum(
        1
        for d in decisions
        if d["decision"] == "APPROVED"
        and d["command_type"] == FILL_COMMAND
        and (session_id is None or str(d["target_id"]) in order_ids)
    )
    rejections = Counter(
        str(d["guard"] or "unknown") for d in decisions if d["decision"] == "REJECTED"
    )
    capital: Decimal | None = None
    if session is not None:
        capital = _decimal(session["starting_capital"])
        opened = datetime.fromisoformat(str(session["started_at"]))
        if not equity or opened <= equity[0].at:
            equity.insert(0, EquityPoint(opened, capital))
    return PerformanceInputs(
        equity=equity,
        fills=fills,
        order_count=len(chosen),
        fill_count=fill_count,
        rejections=dict(sorted(rejections.items())),
        starting_capital=capital,
        currency=_quote(str(o["instrument"]) for o in chosen),
        kill_switch_engagements=sum(1 for d in decisions if d["decision"] == "KILL_SWITCH_ENGAGED"),
    )
