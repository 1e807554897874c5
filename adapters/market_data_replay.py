"""CSV bars replayed in real time: each `advance()` reveals one more bar close.

Paper trading on recorded data: the loop runs on the wall clock, but "now" for the
market (and for the paper venue that matches against it) is the replay cursor.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from adapters.market_data_csv import CandleDataError, CsvMarketData
from application.ports import Candle


class ReplayMarketData:
    def __init__(self, csv: CsvMarketData, start: int = 0) -> None:
        self.csv = csv
        self.ticks = csv.clock_ticks()
        if not self.ticks:
            raise CandleDataError("no bars to replay")
        self.cursor = min(max(start, 0), len(self.ticks) - 1)

    def now(self) -> datetime:
        """The replayed moment: the close of the latest revealed bar."""
        return self.ticks[self.cursor]

    def advance(self) -> bool:
        """Reveal the next bar close; False once the data is exhausted."""
        if self.cursor + 1 >= len(self.ticks):
            return False
        self.cursor += 1
        return True

    @property
    def exhausted(self) -> bool:
        return self.cursor + 1 >= len(self.ticks)

    def instruments(self) -> Sequence[str]:
        return self.csv.instruments()

    def candles(self, instrument: str, until: datetime, limit: int) -> Sequence[Candle]:
        """Bars up to the replay cursor; `until` (the wall clock) can only narrow it."""
        return self.csv.candles(instrument, min(until, self.now()), limit)
