"""The read side's decoding of stored events gives exactly the application's own values."""

from __future__ import annotations

from collections import Counter
from datetime import UTC
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, UUIDAsHex
from hypothesis import given
from hypothesis import strategies as st

from adapters.event_log import StateDecoder, StoredEventSource
from adapters.persistence import eventsourcing_env
from application.trading import TradingApp
from tests.conftest import start_session


def transcoder() -> JSONTranscoder:
    """The library's default transcodings, the ones every AIS application registers."""
    codec = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        codec.register(transcoding)
    return codec


leaves = st.one_of(
    st.uuids(),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.datetimes(timezones=st.sampled_from([UTC, None])),
    st.text(max_size=8),
    st.integers(-(2**63), 2**63 - 1),
    st.booleans(),
    st.none(),
)
states = st.dictionaries(
    st.text(max_size=6),
    st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
        max_leaves=12,
    ),
    max_size=6,
)


def typed(value: Any) -> Any:
    """The value with each leaf's type beside it: equal values of other types differ."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    return (type(value), value)


@given(states)
def test_decoding_equals_the_transcoders_own(state: dict[str, Any]) -> None:
    codec = transcoder()
    data = codec.encode(state)
    decoded, _ = StateDecoder(codec).timed(data)
    assert typed(decoded) == typed(codec.decode(data)) == typed(state)
    for value in decoded.values():
        if isinstance(value, UUID):
            assert str(value) == str(UUID(value.hex)) and hash(value) == hash(UUID(value.hex))


def test_topic_counts_and_topic_reads_match_the_log(
    app: TradingApp, store_url: str | None, tmp_path: Path
) -> None:
    start_session(app)
    app.observe_mark("BTC-USDT", Decimal("50100"))
    source = StoredEventSource(eventsourcing_env(store_url, tmp_path / "home"))
    try:
        everything = source.read(0, 1000)
        head = everything[-1].position
        assert source.topic_counts(head) == Counter(e.topic for e in everything)
        assert source.topic_counts(head - 1) == Counter(e.topic for e in everything[:-1])
        marks = [e for e in everything if e.kind == "RiskDesk.MarkObserved"]
        read = source.read_topics(0, head, {marks[0].topic: None})
        assert [e.position for e in read] == [e.position for e in marks]
        assert [e.state for e in read] == [e.state for e in marks]
        assert [e.at for e in read] == [e.state["timestamp"].isoformat() for e in read]
        assert source.read_topics(0, marks[0].position - 1, {marks[0].topic: None}) == []
        only = source.read_topics(0, head, {marks[0].topic: frozenset({"price", "nothing"})})
        assert [e.state for e in only] == [{"price": e.state["price"]} for e in marks]
    finally:
        source.close()
