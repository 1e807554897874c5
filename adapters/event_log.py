"""Reading the stored log: notifications decoded by the application's own transcodings."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, cast
from uuid import UUID

import orjson
from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder

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
            name: t.decode for name, t in transcoder.names.items()
        }

    def __call__(self, data: bytes) -> dict[str, Any]:
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError:
            return cast("dict[str, Any]", self._fallback(data))
        if type(parsed) is not dict:
            return cast("dict[str, Any]", self._value(parsed))
        return self._dict(parsed)

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


class StoredEventSource:
    def __init__(self, env: dict[str, str]) -> None:
        self.log = EventLog(env)
        transcoder = self.log.mapper.transcoder
        assert isinstance(transcoder, JSONTranscoder)
        self._decode = StateDecoder(transcoder)

    def head(self) -> int:
        return self.log.recorder.max_notification_id() or 0

    def read(self, after: int, limit: int) -> list[LoggedEvent]:
        decode = self._decode
        return [
            LoggedEvent(
                position=n.id,
                topic=n.topic,
                originator_id=str(n.originator_id),
                originator_version=n.originator_version,
                state=decode(n.state),
            )
            for n in self.log.recorder.select_notifications(start=after + 1, limit=limit)
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
