"""What every strategy agent is: a pure function from closed candles to a validated Signal.

An agent works in three steps so that each can be inspected and recorded on its own:

1. ``analyze(candles) -> Analysis`` — features (indicator values) of the last ``lookback``
   bars, as Decimals, or the reason the data cannot support a view (too few bars, gaps,
   non-positive or non-finite prices, mixed instruments);
2. ``propose(analysis) -> Signal | None`` — the agent's own logic;
3. ``validate(signal, analysis) -> Signal | None`` — the shared sanity net: enough data,
   no NaN, direction and expected return agree, confidence within bounds and above a
   floor, expected return capped, values quantized to 1e-8.

``run(instrument, candles)`` chains the three. Agents read only the candles they are
given — no clock, no I/O, no randomness — and only the last ``lookback`` of them, so the
same window always gives the same Signal, and a signal on ``candles[:k]`` can never see
``candles[k:]``.

Indicators are computed with plain Python floats, not numpy: IEEE-754 ``+ - * /`` and
``math.sqrt`` are correctly rounded and ``math.fsum`` is exact, so the intermediate
values are bit-identical on every platform (numpy's SIMD reductions and transcendental
kernels can differ between CPUs). Floats become Decimals only at the boundary: features
rounded to 12 significant digits, signal fields quantized to 1e-8, half-even.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal
from operator import attrgetter
from typing import Protocol, runtime_checkable

from application.ports import Candle
from domain.signals import FLAT, LONG, SHORT, Signal

ZERO = Decimal(0)
ONE = Decimal(1)
QUANTUM = Decimal("1e-8")
_FEATURE_CONTEXT = Context(prec=12, rounding=ROUND_HALF_EVEN)

__all__ = [
    "FIELDS",
    "FLAT",
    "LONG",
    "ONE",
    "QUANTUM",
    "SHORT",
    "ZERO",
    "Agent",
    "Analysis",
    "CandleAgent",
    "Window",
    "check_window",
    "ema",
    "mean",
    "pct",
    "price",
    "pstdev",
    "quantize",
    "simple_returns",
    "to_decimal",
]


# --------------------------------------------------------------------------- numerics


def to_decimal(value: float) -> Decimal:
    """A float feature as a Decimal with 12 significant digits (NaN/inf stay non-finite)."""
    if math.isnan(value):
        return Decimal("NaN")
    if math.isinf(value):
        return Decimal("Infinity") if value > 0 else Decimal("-Infinity")
    return _FEATURE_CONTEXT.create_decimal_from_float(value)


def quantize(value: Decimal) -> Decimal:
    """Signal fields on a fixed 1e-8 grid, half-even (callers cap magnitudes first)."""
    return value.quantize(QUANTUM, rounding=ROUND_HALF_EVEN)


def mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def pstdev(values: Sequence[float]) -> float:
    """Population standard deviation (two-pass, exact sums)."""
    m = mean(values)
    deviations = [v - m for v in values]
    return math.sqrt(math.fsum(map(operator.mul, deviations, deviations)) / len(values))


def simple_returns(closes: Sequence[float]) -> list[float]:
    """Bar-to-bar simple returns; prices are checked positive before this is called."""
    ratios = map(operator.truediv, closes[1:], closes[:-1])
    return [r - 1.0 for r in ratios]


def ema(values: Sequence[float], span: int) -> float:
    """Exponential moving average (alpha = 2/(span+1)), seeded with the first span's mean."""
    if len(values) < span:
        raise ValueError(f"ema needs {span} values, got {len(values)}")
    alpha = 2.0 / (span + 1)
    level = mean(values[:span])
    for v in values[span:]:
        level += alpha * (v - level)
    return level


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Analysis:
    """What an agent saw: features of its window, or why the window cannot be used.

    ``problem`` is None when the features are complete and finite; otherwise it says
    what was wrong, ``features`` may be partial and no signal may come of it.
    """

    agent: str
    instrument: str
    bars: int  # candles in the analysed window (at most the agent's lookback)
    as_of: datetime | None  # open time of the last bar analysed
    close: Decimal  # last close as the candle gave it (0 when there is none)
    features: Mapping[str, Decimal] = field(default_factory=dict)
    problem: str | None = None

    @property
    def ready(self) -> bool:
        return self.problem is None

    def feature(self, name: str) -> Decimal:
        return self.features[name]

    def to_dict(self) -> dict[str, str | int | None]:
        """Strings for Decimals, so the inputs of a decision can be logged verbatim."""
        out: dict[str, str | int | None] = {
            "agent": self.agent,
            "instrument": self.instrument,
            "bars": self.bars,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "close": str(self.close),
            "problem": self.problem,
        }
        out.update({k: str(v) for k, v in sorted(self.features.items())})
        return out


FIELDS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class Window:
    """The last ``lookback`` bars, checked, with the fields an agent uses as floats.

    Only the requested fields are converted (``float(Decimal)`` is the dominant cost of
    an agent call); the others are empty lists.
    """

    candles: Sequence[Candle]
    step: timedelta  # the bar spacing (smallest gap between opens; 0 for a single bar)
    opens: list[float]
    highs: list[float]
    lows: list[float]
    closes: list[float]
    volumes: list[float]


def check_window(
    candles: Sequence[Candle],
    lookback: int,
    max_missing_fraction: Decimal,
    fields: Sequence[str] = FIELDS,
) -> tuple[Window | None, str | None]:
    """The last ``lookback`` bars as floats, or why they cannot be trusted.

    Refused: too few bars, several instruments, non-finite or non-positive prices (or
    negative volume) in the fields used, times not strictly increasing, or a window
    that misses more than ``max_missing_fraction`` of its bars (gaps in the source: a
    "1-bar" return across an hour's gap is not a 1-bar return).
    """
    if len(candles) < lookback:
        return None, f"needs {lookback} bars, got {len(candles)}"
    bars = candles[-lookback:]
    if len(set(map(attrgetter("instrument"), bars))) > 1:
        return None, "candles from more than one instrument"
    step = timedelta(0)
    if len(bars) >= 2:
        times = list(map(attrgetter("opens_at"), bars))
        step = min(map(operator.sub, times[1:], times[:-1]))
        if step.total_seconds() <= 0:
            return None, "bar times are not strictly increasing"
        missing = round((bars[-1].opens_at - bars[0].opens_at) / step) + 1 - len(bars)
        if missing > max_missing_fraction * len(bars):
            return None, f"window of {len(bars)} bars misses {missing} bars (gaps)"
    columns: dict[str, list[float]] = {}
    for name in FIELDS:
        if name not in fields:
            columns[name] = []
            continue
        try:
            values = list(map(float, map(attrgetter(name), bars)))
        except ValueError:  # a signalling NaN refuses conversion
            return None, f"{name} is not a number"
        if not all(map(math.isfinite, values)):
            return None, f"non-finite {name}"
        if (min(values) < 0) if name == "volume" else (min(values) <= 0):
            return None, f"{'negative' if name == 'volume' else 'non-positive'} {name}"
        columns[name] = values
    window = Window(
        candles=bars,
        step=step,
        opens=columns["open"],
        highs=columns["high"],
        lows=columns["low"],
        closes=columns["close"],
        volumes=columns["volume"],
    )
    return window, None


@runtime_checkable
class Agent(Protocol):
    """A strategy agent. ``lookback`` is how many closed bars it needs (and reads)."""

    name: str
    lookback: int

    def analyze(self, candles: Sequence[Candle]) -> Analysis: ...

    def propose(self, analysis: Analysis) -> Signal | None: ...

    def validate(self, signal: Signal, analysis: Analysis) -> Signal | None: ...

    def run(self, instrument: str, candles: Sequence[Candle]) -> Signal | None: ...


# --------------------------------------------------------------------------- base class


class CandleAgent:
    """Shared plumbing: windowing and data checks, Decimal features, validate and run.

    Subclasses set ``name``/``lookback`` and implement ``_features`` (floats from the
    checked window) and ``propose``.
    """

    name: str = "agent"
    lookback: int = 2
    fields: tuple[str, ...] = FIELDS  # the candle fields _features reads

    def __init__(
        self,
        *,
        max_expected_return: Decimal = Decimal("0.05"),
        min_confidence: Decimal = Decimal("0.05"),
        max_missing_fraction: Decimal = Decimal("0.1"),
    ) -> None:
        if not ZERO < max_expected_return <= ONE:
            raise ValueError("max_expected_return must be within (0, 1]")
        if not ZERO <= min_confidence <= ONE:
            raise ValueError("min_confidence must be within [0, 1]")
        if not ZERO <= max_missing_fraction < ONE:
            raise ValueError("max_missing_fraction must be within [0, 1)")
        self.max_expected_return = max_expected_return
        self.min_confidence = min_confidence
        self.max_missing_fraction = max_missing_fraction

    # -- to implement ----------------------------------------------------------------

    def _features(self, window: Window) -> dict[str, float]:
        raise NotImplementedError

    def propose(self, analysis: Analysis) -> Signal | None:
        raise NotImplementedError

    # -- analyze ---------------------------------------------------------------------

    def analyze(self, candles: Sequence[Candle]) -> Analysis:
        last = candles[-1] if candles else None
        instrument = last.instrument if last else ""
        window, problem = check_window(
            candles, self.lookback, self.max_missing_fraction, self.fields
        )
        bars = min(len(candles), self.lookback)
        as_of = last.opens_at if last else None
        close = last.close if last else ZERO
        if window is None:
            return Analysis(self.name, instrument, bars, as_of, close, {}, problem)
        features = {k: to_decimal(v) for k, v in self._features(window).items()}
        bad = sorted(k for k, v in features.items() if not v.is_finite())
        problem = f"non-finite features: {', '.join(bad)}" if bad else None
        return Analysis(self.name, instrument, bars, as_of, close, features, problem)

    # -- validate --------------------------------------------------------------------

    def validate(self, signal: Signal, analysis: Analysis) -> Signal | None:
        """Sanity net for any proposal; None means the proposal is dropped."""
        if not analysis.ready or analysis.bars < self.lookback:
            return None
        if signal.agent != self.name or signal.instrument != analysis.instrument:
            return None
        if signal.direction not in (LONG, SHORT):
            return None  # no view is no signal
        if not (signal.confidence.is_finite() and signal.expected_return.is_finite()):
            return None
        if not ZERO <= signal.confidence <= ONE or signal.confidence < self.min_confidence:
            return None
        if signal.expected_return * signal.direction <= 0:
            return None  # a long must expect a gain, a short a fall
        expected, reason = signal.expected_return, signal.reason
        if abs(expected) > self.max_expected_return:
            expected = self.max_expected_return * signal.direction
            reason = f"{reason} [expected return capped at {self.max_expected_return:.2%}]"
        expected, confidence = quantize(expected), quantize(signal.confidence)
        if expected == 0 or confidence < self.min_confidence:
            return None
        return dataclasses.replace(
            signal, confidence=confidence, expected_return=expected, reason=reason
        )

    # -- run -------------------------------------------------------------------------

    def run(self, instrument: str, candles: Sequence[Candle]) -> Signal | None:
        """analyze → propose → validate on the last ``lookback`` bars of ``candles``."""
        if any(c.instrument != instrument for c in candles[-self.lookback :]):
            raise ValueError(f"{self.name}: candles are not all {instrument}")
        if len(candles) < self.lookback:
            return None
        analysis = self.analyze(candles)
        if not analysis.ready:
            return None
        proposal = self.propose(analysis)
        return self.validate(proposal, analysis) if proposal is not None else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, lookback={self.lookback})"


def price(value: Decimal) -> str:
    """A price for a reason string: 6 significant digits, no exponent for small alts."""
    if value == 0:
        return "0"
    digits = max(0, 6 - value.adjusted() - 1)
    return f"{value:.{digits}f}"


def pct(value: Decimal, places: int = 2) -> str:
    return f"{value * 100:+.{places}f}%"
