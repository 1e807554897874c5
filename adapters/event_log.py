"""Reading the stored log: notifications decoded by the application's own transcodings."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, cast
from uuid import UUID, SafeUUID

import orjson
from eventsourcing.application import Application
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Notification,
    Transcoding,
    UUIDAsHex,
)
from eventsourcing.sqlite import SQLiteApplicationRecorder

from projections.spec import LoggedEvent


class EventLog(Application[UUID]):
    """Opens the same event tables as TradingApp (same name) without any write logic."""

    name = "ais"


class StateDecoder:
    """The transcoder's decoding, with orjson parsing the text.

    Rebuilding read models decodes every event of the log, and the stdlib parser with an
    object hook per dict was most of that cost. The result is the same objects: typed
    `{"_type_", "_data_"}` dicts are turned into values innermost first, by the very
    transcodings the application registered. Anything orjson refuses (NaN, huge ints)
    goes through the transcoder itself.
    """

    def __init__(self, transcoder: JSONTranscoder) -> None:
        self._fallback = transcoder.decode
        self._types: dict[str, Callable[[Any], Any]] = {
            name: _fast_decode(t) for name, t in transcoder.names.items()
        }
        # the name the library's datetime transcoding has here, if it is registered
        iso = [name for name, t in transcoder.names.items() if type(t) is DatetimeAsISO]
        self._iso_name = iso[0] if iso else None

    def timed(
        self, data: bytes, keys: frozenset[str] | None = None
    ) -> tuple[dict[str, Any], str | None]:
        """The state (or only its `keys`: the others are not converted, and left out), and
        its `timestamp` as the ISO text it was stored as: what `datetime.isoformat` would
        give back, without making it again per event."""
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError:
            return cast("dict[str, Any]", self._fallback(data)), None
        if type(parsed) is not dict:
            return cast("dict[str, Any]", self._value(parsed)), None
        stamp = parsed.get("timestamp")
        at = None
        if type(stamp) is dict and stamp.get("_type_") == self._iso_name:
            at = stamp.get("_data_")
        if keys is not None:
            parsed = {k: parsed[k] for k in keys if k in parsed}
        return self._dict(parsed), at if type(at) is str else None

    def _value(self, value: Any) -> Any:
        if type(value) is dict:
            if len(value) == 2 and "_type_" in value and "_data_" in value:
                return self._types[value["_type_"]](self._value(value["_data_"]))
            return self._dict(value)
        if type(value) is list:
            for i, item in enumerate(value):
                if type(item) is dict or type(item) is list:
                    value[i] = self._value(item)
        return value

    def _dict(self, value: dict[str, Any]) -> dict[str, Any]:
        # The hot path: typed leaves are converted here, without a call per leaf.
        types = self._types
        for key, item in value.items():
            if type(item) is dict:
                if len(item) == 2 and "_type_" in item and "_data_" in item:
                    data = item["_data_"]
                    if type(data) is dict or type(data) is list:
                        data = self._value(data)
                    value[key] = types[item["_type_"]](data)
                else:
                    value[key] = self._dict(item)
            elif type(item) is list:
                value[key] = self._value(item)
        return value


def _uuid_from_hex(data: str) -> UUID:
    """`UUID(data)` for the 32 hex digits `UUIDAsHex` writes, at half the cost: the
    constructor's parsing of every other spelling was a tenth of decoding the log."""
    if len(data) != 32:
        return UUID(data)
    value = object.__new__(UUID)
    object.__setattr__(value, "int", int(data, 16))  # as UUID.__init__ sets its slots
    object.__setattr__(value, "is_safe", SafeUUID.unknown)
    return value


def _fast_decode(transcoding: Transcoding) -> Callable[[Any], Any]:
    """The library's own transcodings decoded without their Python wrapper frame (the
    same values); any other registered transcoding keeps its own `decode`."""
    kind = type(transcoding)
    if kind is UUIDAsHex:
        return _uuid_from_hex
    if kind is DecimalAsStr:
        return Decimal
    if kind is DatetimeAsISO:
        return datetime.fromisoformat
    return transcoding.decode


class StoredEventSource:
    def __init__(self, env: dict[str, str]) -> None:
        self.log = EventLog(env)
        transcoder = self.log.mapper.transcoder
        assert isinstance(transcoder, JSONTranscoder)
        self._decode = StateDecoder(transcoder)

    def head(self) -> int:
        return self.log.recorder.max_notification_id() or 0

    def read(self, after: int, limit: int) -> list[LoggedEvent]:
        return self._logged(self.log.recorder.select_notifications(start=after + 1, limit=limit))

    def topic_counts(self, upto: int) -> dict[str, int]:
        """How many events of each topic the log holds at positions 1..upto."""
        recorder = self.log.recorder
        if isinstance(recorder, SQLiteApplicationRecorder):
            table = recorder.events_table_name
            sql = f"SELECT topic, COUNT(*) FROM {table} WHERE rowid <= ? GROUP BY topic"
            with recorder.datastore.transaction(commit=False) as cursor:
                cursor.execute(sql, (upto,))
                return {str(topic): int(n) for topic, n in cursor.fetchall()}
        from eventsourcing.postgres import PostgresApplicationRecorder  # only on PostgreSQL
        from psycopg.sql import SQL, Identifier

        if isinstance(recorder, PostgresApplicationRecorder):
            query = SQL(
                "SELECT topic, COUNT(*) AS n FROM {}.{} WHERE notification_id <= %s GROUP BY topic"
            ).format(Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name))
            with recorder.datastore.transaction(commit=False) as pg:
                pg.execute(query, (upto,))
                return {str(row["topic"]): int(row["n"]) for row in pg.fetchall()}
        raise TypeError(f"cannot count topics in a {type(recorder).__name__}")

    def read_topics(
        self, after: int, stop: int, topics: Mapping[str, frozenset[str] | None]
    ) -> list[LoggedEvent]:
        """The events of these topics at positions after+1..stop, filtered by the database:
        the rest are never fetched, nor decoded. A topic's state holds only the fields it
        maps to (all, for None)."""
        if not topics:
            return []
        notifications = self.log.recorder.select_notifications(
            start=after + 1, limit=stop - after, stop=stop, topics=list(topics)
        )
        return self._logged(notifications, topics)

    def _logged(
        self,
        notifications: Sequence[Notification],
        fields: Mapping[str, frozenset[str] | None] | None = None,
    ) -> list[LoggedEvent]:
        decode = self._decode.timed
        return [
            LoggedEvent(
                n.id,
                n.topic,
                str(n.originator_id),
                n.originator_version,
                *decode(n.state, fields[n.topic] if fields else None),
            )
            for n in notifications
        ]

    def close(self) -> None:
        self.log.close()


def log_digest(log: EventLog, batch: int = 5000) -> str:
    """SHA-256 over every stored record in log order: equal logs, equal digests."""
    h = hashlib.sha256()
    position = 0
    while True:
        notes = log.recorder.select_notifications(start=position + 1, limit=batch)
        if not notes:
            return h.hexdigest()
        for n in notes:
            h.update(f"{n.topic}|{n.originator_id}|{n.originator_version}|".encode())
            h.update(hashlib.sha256(n.state).digest())
        position = notes[-1].id
