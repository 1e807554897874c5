"""The report folder: ``index.html``, ``equity.png``, ``drawdown.png``, ``summary.json``.

* ``summary.json`` — every `Summary` field as an exact string (``Summary.from_dict``
  reads it back), plus the display rows and a note of the data and seed.
* ``index.html`` — one self-contained page (inline CSS, no script, no CDN): the summary
  table with units and right-aligned numbers, the two images (relative links to the PNGs
  beside it), the rejections by guard, the definitions, and the data/seed note.
* ``equity.png`` / ``drawdown.png`` — matplotlib on the Agg canvas (no pyplot, no GUI),
  UTC dates on the x axis, units on the y axis.

Output is deterministic: the same inputs give the same bytes for all four files (the PNG
``Software`` text chunk is dropped and Agg writes no timestamp; nothing in the HTML or JSON
depends on the wall clock). Floats appear only as plot coordinates, never as money.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Context, Decimal, localcontext
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from rich.table import Table

from adapters.read_store import SqlReadStore
from application.performance import (
    EquityPoint,
    PerformanceInputs,
    Summary,
    curve,
    decimal_text,
    drawdown_series,
    inputs_from_read_models,
)
from projections.registry import select
from projections.spec import Row

FIGSIZE = (9.0, 4.0)
DPI = 100
SCHEMA = 1
_STABLE_CRYPTO_QUOTES = {"", "USD", "USDT", "USDC", "BUSD", "DAI", "EUR"}
_DISPLAY = Context(prec=60)  # quantizing never runs out of digits
_RC: Any = {  # the rc keys are Literal-typed in matplotlib's stubs
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "timezone": "UTC",
    "path.simplify": True,
}


@dataclass(frozen=True)
class ReportFiles:
    directory: Path
    index: Path
    equity: Path
    drawdown: Path
    summary: Path


@dataclass(frozen=True)
class DisplayRow:
    metric: str
    value: str
    unit: str


# --- display formatting -----------------------------------------------------------------------


def _fixed(value: Decimal, places: int) -> str:
    with localcontext(_DISPLAY):
        q = value.quantize(Decimal(1).scaleb(-places))
    return format(abs(q) if q == 0 else q, "f")  # "0.00", never "-0.00"


def percent(value: Decimal | None, places: int = 2) -> str:
    """A fraction as percent digits (0.0123 -> "1.23"); "—" when undefined."""
    return "—" if value is None else _fixed(value * 100, places)


def ratio(value: Decimal | None, places: int = 2) -> str:
    return "—" if value is None else _fixed(value, places)


def money_places(currency: str) -> int:
    """2 decimals for fiat and stablecoins, 8 (satoshis) for coin-quoted books."""
    return 2 if currency.upper() in _STABLE_CRYPTO_QUOTES else 8


def period_label(seconds: Decimal) -> str:
    """The sampling period in words: "1 day", "2 days", "1 h", "5 min", "90 s"."""
    if seconds == seconds.to_integral_value():
        s = int(seconds)
        if s and s % 86400 == 0:
            return f"{s // 86400} day" + ("s" if s != 86400 else "")
        if s and s % 3600 == 0:
            return f"{s // 3600} h"
        if s and s % 60 == 0:
            return f"{s // 60} min"
    return f"{decimal_text(seconds)} s"


def _when(at: datetime | None) -> str:
    return "—" if at is None else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def display_rows(summary: Summary) -> list[DisplayRow]:
    """The summary table as shown (HTML and terminal): metric, quantized value, unit."""
    cur = summary.currency or "quote"
    places = money_places(summary.currency)
    per = period_label(summary.period_seconds)
    span = _fixed(summary.span_days, 2)
    n = summary.periods
    return [
        DisplayRow("Start", _when(summary.start), ""),
        DisplayRow("End", _when(summary.end), ""),
        DisplayRow("Span", span, "days"),
        DisplayRow("Starting equity", _fixed(summary.starting_equity, places), cur),
        DisplayRow("Final equity (NAV)", _fixed(summary.final_equity, places), cur),
        DisplayRow("Total return", percent(summary.total_return, 3), "%"),
        DisplayRow("CAGR", percent(summary.cagr), f"% a year (annualized from {span} days)"),
        DisplayRow("Max drawdown", percent(summary.max_drawdown, 3), "% from high-water mark"),
        DisplayRow("Volatility", percent(summary.volatility), f"% a year ({per} returns)"),
        DisplayRow("Sharpe", ratio(summary.sharpe), f"annualized, risk-free 0, {n} × {per}"),
        DisplayRow("Sortino", ratio(summary.sortino), f"annualized, target 0, {n} × {per}"),
        DisplayRow("Calmar", ratio(summary.calmar), "CAGR / max drawdown"),
        DisplayRow("VaR 95 %", percent(summary.var_95, 3), f"% of NAV lost in one {per} period"),
        DisplayRow("CVaR 95 %", percent(summary.cvar_95, 3), f"% of NAV lost in one {per} period"),
        DisplayRow("Turnover", ratio(summary.turnover, 4), "× average NAV"),
        DisplayRow("Traded notional", _fixed(summary.traded_notional, places), cur),
        DisplayRow("Fees", _fixed(summary.fees, places), cur),
        DisplayRow("Orders", str(summary.orders), "count"),
        DisplayRow("Fills", str(summary.fills), "count"),
        DisplayRow("Rejections", str(summary.rejected), "count"),
        DisplayRow("Kill-switch engagements", str(summary.kill_switch_engagements), "count"),
    ]


def summary_table(summary: Summary, title: str = "Performance") -> Table:
    """A rich table of `display_rows` (numbers right-aligned) for the terminal."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("unit")
    for row in display_rows(summary):
        table.add_row(row.metric, row.value, row.unit)
    for guard, count in summary.rejections.items():
        table.add_row(f"  rejected by {guard}", str(count), "count")
    return table


# --- charts -------------------------------------------------------------------------------------


def _dates_axis(ax: Axes) -> None:
    locator = AutoDateLocator(tz=UTC)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=UTC))  # type: ignore[no-untyped-call]
    ax.set_xlabel("Time (UTC)")


def _x(times: Iterable[datetime]) -> Any:
    """Matplotlib date numbers (days since the epoch, UTC) for the x axis."""
    return date2num(list(times))  # type: ignore[no-untyped-call]


def _save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    fig.savefig(path, format="png", dpi=DPI, metadata={"Software": None})


def plot_equity(points: Sequence[EquityPoint], summary: Summary, path: Path) -> None:
    """NAV over time, with the opening equity as a dashed reference line."""
    cur = summary.currency or "quote"
    places = money_places(summary.currency)
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=FIGSIZE, layout="constrained")
        ax = fig.add_subplot()
        times = _x(p.at for p in points)
        ax.plot(
            times,
            [float(p.nav) for p in points],
            drawstyle="steps-post",
            color="#1f77b4",
            lw=1.4,
            label="NAV (steps at each mark)",
        )
        if len(points) == 1:
            ax.plot(times, [float(points[0].nav)], "o", color="#1f77b4")
        ax.axhline(
            float(summary.starting_equity),
            color="grey",
            ls="--",
            lw=1,
            label=f"opening equity {_fixed(summary.starting_equity, places)}",
        )
        ax.set_title(
            f"Equity (NAV) — total return {percent(summary.total_return, 3)} %, "
            f"final {_fixed(summary.final_equity, places)} {cur}"
        )
        ax.set_ylabel(f"NAV ({cur})")
        if places == 2:
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.2f}"))
        else:  # coin-quoted: plain numbers, no offset
            ax.ticklabel_format(axis="y", style="plain", useOffset=False)
        ax.legend(loc="best")
        _dates_axis(ax)
        _save(fig, path)


def plot_drawdown(points: Sequence[EquityPoint], summary: Summary, path: Path) -> None:
    """Drawdown from the running high-water mark, in percent (0 at a new high, below 0 after)."""
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=FIGSIZE, layout="constrained")
        ax = fig.add_subplot()
        series = drawdown_series(points)
        times = _x(at for at, _ in series)
        dd = [-float(d * 100) for _, d in series]
        ax.fill_between(times, dd, 0, step="post", color="#d62728", alpha=0.35, lw=0)
        ax.step(times, dd, where="post", color="#d62728", lw=1.2, label="drawdown")
        if len(series) == 1:
            ax.plot(times, dd, "o", color="#d62728")
        if summary.max_drawdown_trough_at is not None:
            ax.axhline(
                -float(summary.max_drawdown * 100),
                color="black",
                ls=":",
                lw=1,
                label=f"max drawdown {percent(summary.max_drawdown, 3)} % "
                f"at {_when(summary.max_drawdown_trough_at)}",
            )
        ax.set_title(f"Drawdown from high-water mark — max {percent(summary.max_drawdown, 3)} %")
        ax.set_ylabel("Drawdown (% of high-water mark)")
        low = min(dd) if dd else 0.0
        ax.set_ylim(min(low * 1.15, -0.01), max(-low * 0.05, 0.002))
        ax.legend(loc="best")
        _dates_axis(ax)
        _save(fig, path)


# --- page and files ---------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em auto;
       max-width: 960px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { padding: 0.25em 0.8em; border-bottom: 1px solid #ddd; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; display: block; margin: 0.5em 0; }
.note { color: #555; font-size: 0.9em; }
code { font-size: 0.95em; }
"""

_DEFINITIONS = (
    ("Total return", "V<sub>last</sub> / E<sub>0</sub> − 1"),
    ("CAGR", "(V<sub>last</sub> / E<sub>0</sub>)<sup>1/years</sup> − 1, years = span / 365 d"),
    ("Max drawdown", "max over points of 1 − V<sub>t</sub> / max<sub>s≤t</sub> V<sub>s</sub>"),
    (
        "Period returns",
        "NAV resampled on t<sub>0</sub> + k·P (last NAV at or before), "
        "r<sub>k</sub> = V<sub>k</sub> / V<sub>k−1</sub> − 1",
    ),
    ("Sharpe", "mean(r) / std(r, ddof 1) × √N, N = periods a year, risk-free 0"),
    ("Sortino", "mean(r) / √(Σ min(r, 0)² / n) × √N"),
    ("Calmar", "CAGR / max drawdown"),
    ("VaR / CVaR 95 %", "−Q<sub>5 %</sub>(r) (linear interpolation); −mean(r ≤ Q<sub>5 %</sub>)"),
    ("Turnover", "Σ |fill notional| / time-weighted average NAV (whole history)"),
)


def render_html(
    summary: Summary,
    *,
    title: str,
    data: str,
    seed: int | str | None,
    session: str | None = None,
) -> str:
    e = html.escape
    rows = "\n".join(
        f'<tr><th scope="row">{e(r.metric)}</th><td class="num">{e(r.value)}</td>'
        f"<td>{e(r.unit)}</td></tr>"
        for r in display_rows(summary)
    )
    if summary.rejections:
        rejected = "\n".join(
            f'<tr><td>{e(guard)}</td><td class="num">{n}</td></tr>'
            for guard, n in summary.rejections.items()
        )
        rejections = (
            "<table><thead><tr><th>guard</th><th>rejections</th></tr></thead>"
            f"<tbody>\n{rejected}\n</tbody></table>"
        )
    else:
        rejections = "<p>No command was rejected.</p>"
    definitions = "\n".join(f"<li><b>{name}</b>: {formula}</li>" for name, formula in _DEFINITIONS)
    note = f"Data: {e(data or 'not stated')}. Seed: {e(str(seed) if seed is not None else 'none')}."
    if session:
        note += f" Session: <code>{e(session)}</code>."
    per = e(period_label(summary.period_seconds))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{e(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{e(title)}</h1>
<p class="note">{note}</p>
<p class="note">{e(_when(summary.start))} → {e(_when(summary.end))}. Money in
{e(summary.currency or "the quote currency")}; returns sampled every {per}
({summary.periods} periods, {e(decimal_text(summary.periods_per_year))} a year).</p>
<h2>Summary</h2>
<table>
<thead><tr><th>metric</th><th>value</th><th>unit</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
<h2>Equity</h2>
<img src="equity.png" width="{int(FIGSIZE[0] * DPI)}" height="{int(FIGSIZE[1] * DPI)}"
 alt="NAV over time in {e(summary.currency or "quote currency")}">
<h2>Drawdown</h2>
<img src="drawdown.png" width="{int(FIGSIZE[0] * DPI)}" height="{int(FIGSIZE[1] * DPI)}"
 alt="Drawdown from the high-water mark in percent over time">
<h2>Rejections by guard</h2>
{rejections}
<h2>Definitions</h2>
<ul class="note">
{definitions}
</ul>
</body>
</html>
"""


def summary_document(
    summary: Summary, *, title: str, data: str, seed: int | str | None, session: str | None
) -> dict[str, object]:
    return {
        "schema": str(SCHEMA),
        "title": title,
        "data": data,
        "seed": None if seed is None else str(seed),
        "session": session,
        "summary": summary.to_dict(),
        "display": [[r.metric, r.value, r.unit] for r in display_rows(summary)],
    }


def write_report(
    directory: Path,
    summary: Summary,
    inputs: PerformanceInputs,
    *,
    title: str = "AIS performance report",
    data: str = "",
    seed: int | str | None = None,
    session: str | None = None,
) -> ReportFiles:
    """Write the four files into ``directory`` (created if missing, files overwritten)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(
        directory,
        directory / "index.html",
        directory / "equity.png",
        directory / "drawdown.png",
        directory / "summary.json",
    )
    points = curve(inputs)
    plot_equity(points, summary, files.equity)
    plot_drawdown(points, summary, files.drawdown)
    document = summary_document(summary, title=title, data=data, seed=seed, session=session)
    files.summary.write_text(
        json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    files.index.write_text(
        render_html(summary, title=title, data=data, seed=seed, session=session),
        encoding="utf-8",
    )
    return files


# --- from the read store ----------------------------------------------------------------------

_TABLES = {
    "portfolio": "nav_history",
    "orders": "orders",
    "risk_decisions": "risk_decisions",
    "sessions": "sessions",
}


def performance_inputs(store: SqlReadStore, session_id: str | None = None) -> PerformanceInputs:
    """Dump the read models the report needs and build `PerformanceInputs` from them.

    The projector should have caught up first (``Projector.run_once()``); ``session_id``
    selects one session's history (see `inputs_from_read_models`).
    """
    rows: dict[str, list[Row]] = {table: [] for table in _TABLES.values()}
    for projection in select(list(_TABLES)):
        for table, row in store.dump(projection):
            if table == _TABLES[projection.name]:
                rows[table].append(row)
    return inputs_from_read_models(
        nav_history=rows["nav_history"],
        orders=rows["orders"],
        risk_decisions=rows["risk_decisions"],
        sessions=rows["sessions"],
        session_id=session_id,
    )
