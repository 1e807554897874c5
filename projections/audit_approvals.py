"""Re-verifying approvals from the log alone (offline audit with the HMAC keys).

"No token, no event": every state change of an Order, a Position or a TradingSession
stores the RiskDesk's token that authorised it. Given the key ring, this module checks,
event by event in log order, that each such event

1. carries an approval (Position.Opened is the one exception: it is created by the same
   ApplyFill whose FillApplied, the very next event, carries the token; that pairing is
   checked instead);
2. whose token is well formed and signed (HMAC-SHA256) by a key of the ring;
3. is for the command this event type implements (Order.Placed <- PlaceOrder,
   TradingSession.StatusChanged to HALTED <- HaltSession, ...), for this aggregate
   (target id = originator id) and for the version the aggregate had before the event
   (None for the creating event, and for a Position's opening fill);
4. whose command digest is the SHA-256 of the command rebuilt from the event's own
   payload: the token approved exactly this quantity, price, side, reason, ...;
5. was valid when the event happened (issued_at <= event timestamp < expires_at),

by rebuilding the command (`domain.commands.command_from_dict`) and running the
aggregate's own `domain.approval.Verifier` with the event's timestamp as the clock.

A FillApplied event does not store the fill's account id and fill time, which the ApplyFill
digest covers. They are taken from the desk's CommandApproved event for the same approval
(which records the whole command), else from the Position.Opened event (account) and the
Order.Filled event of the same trade (fill time) seen earlier in the stream. When neither
is in the exported range the token's signature, type, target and version are still
checked and the event is counted as `digest_unchecked`.

The desk's CommandApproved events are checked too: signature, and the digest of the
command they record. A target event whose token differs from the desk's record of the same
approval id is reported. The memory held is the approvals issued but not yet used (bounded).
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.approval import ApprovalToken, KeyRing, Verifier
from domain.canonical import canonical_bytes
from domain.commands import Command, command_from_dict, position_id
from domain.errors import DomainError

_ORDER_COMMANDS = {
    "Order.Placed": "PlaceOrder",
    "Order.Submitted": "SubmitOrder",
    "Order.Acknowledged": "AcknowledgeOrder",
    "Order.Canceled": "CancelOrder",
    "Order.Rejected": "RejectOrder",
    "Order.Expired": "ExpireOrder",
    "Order.Filled": "RecordFill",
}
_SESSION_STATUS_COMMANDS = {
    "HALTED": "HaltSession",
    "ACTIVE": "ResumeSession",
    "ENDED": "EndSession",
}
_CREATES = frozenset({"Order.Placed", "TradingSession.Started"})
_TARGETS = ("Order.", "Position.", "TradingSession.")
_FILL_TIMED = frozenset({"RecordFill", "ApplyFill"})
MAX_PENDING = 200_000


class ApprovalProblem(Exception):
    """What is wrong with one event's approval (the message names it)."""


@dataclass
class ApprovalStats:
    tokens_verified: int = 0  # target events whose token was fully re-verified
    desk_tokens_verified: int = 0  # RiskDesk.CommandApproved tokens re-verified
    digest_unchecked: int = 0  # FillApplied whose account/fill time were outside the range
    positions_opened: int = 0
    by_command: dict[str, int] = field(default_factory=dict)


@dataclass
class _DeskRecord:
    token: dict[str, Any]
    command: dict[str, Any]


def _kind(topic: str) -> str:
    return topic.rsplit(":", 1)[-1]


def _at(value: object, name: str) -> datetime:
    if not isinstance(value, str):
        raise ApprovalProblem(f"{name} is not a timestamp")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ApprovalProblem(f"{name} is not a timestamp: {value!r}") from None
    if moment.tzinfo is None:
        raise ApprovalProblem(f"{name} has no timezone")
    return moment


class ApprovalAuditor:
    """Feed every event in log order to `check`; it raises ApprovalProblem on the first fault."""

    def __init__(self, keys: KeyRing) -> None:
        if not keys.keys:
            raise ValueError("no HMAC key given: cannot re-verify approvals")
        self.keys = keys
        self.stats = ApprovalStats()
        self._desk: OrderedDict[str, _DeskRecord] = OrderedDict()
        self._accounts: dict[str, str] = {}  # position id -> account id (Position.Opened)
        self._fill_times: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._opened: str | None = None  # a Position.Opened waiting for its opening fill
        self._opened_at = 0

    # --- the stream ----------------------------------------------------------------------------
    def check(
        self,
        position: int,
        originator_id: str,
        originator_version: int,
        topic: str,
        state: Any,
    ) -> None:
        kind = _kind(topic)
        if self._opened is not None:
            opened, self._opened = self._opened, None
            if kind != "Position.FillApplied" or originator_id != opened or originator_version != 2:
                raise ApprovalProblem(
                    f"Position.Opened at position {self._opened_at} is not followed by its "
                    "approved opening fill"
                )
        if not isinstance(state, dict):
            raise ApprovalProblem("the event state is not a JSON object")
        if kind == "RiskDesk.CommandApproved":
            self._desk_approval(state)
            return
        if not kind.startswith(_TARGETS):
            return
        if kind == "Position.Opened":
            self._position_opened(position, originator_id, originator_version, state)
            return
        approval = state.get("approval")
        if approval is None:
            raise ApprovalProblem(f"{kind} carries no approval")
        if not isinstance(approval, dict):
            raise ApprovalProblem(f"{kind}: the approval is not an object")
        token = self._token(approval)
        expected = self._command_type(kind, state)
        if token.command_type != expected:
            raise ApprovalProblem(
                f"{kind} needs a {expected} approval; the token approves {token.command_type}"
            )
        if kind in _CREATES and originator_version != 1:
            raise ApprovalProblem(f"{kind} must be version 1, not {originator_version}")
        # The creating event, and a Position's opening fill (version 2, after Opened, made
        # by the same ApplyFill), were approved for "no target yet"; any other event for
        # the version the aggregate had just before it.
        opening = kind in _CREATES or (kind == "Position.FillApplied" and originator_version == 2)
        target_version = None if opening else originator_version - 1
        at = _at(state.get("timestamp"), "the event timestamp")
        desk = self._desk.pop(str(token.approval_id), None)
        fields = self._fields(kind, expected, originator_id, state, desk)
        if fields is None:  # a FillApplied whose account and fill time are out of range
            self._check_without_digest(token, originator_id, target_version, at)
            self.stats.digest_unchecked += 1
        else:
            command = self._command(expected, fields)
            self._verify(token, command, target_version, at)
            if kind == "Position.FillApplied" and str(command.target_id) != originator_id:
                raise ApprovalProblem("the fill's account and instrument name another position")
            self.stats.tokens_verified += 1
        if desk is not None and desk.token != approval:
            raise ApprovalProblem(
                f"the approval {token.approval_id} differs from the desk's CommandApproved record"
            )
        self.stats.by_command[expected] = self.stats.by_command.get(expected, 0) + 1

    def finish(self) -> None:
        """End of the stream: an Opened as the very last event has nothing after it to check."""
        self._opened = None

    # --- pieces --------------------------------------------------------------------------------
    def _position_opened(
        self, position: int, originator_id: str, originator_version: int, state: dict[str, Any]
    ) -> None:
        if originator_version != 1:
            raise ApprovalProblem(f"Position.Opened at version {originator_version}")
        if state.get("approval") is not None:
            raise ApprovalProblem("Position.Opened unexpectedly carries an approval")
        account, instrument = state.get("account_id"), state.get("instrument")
        if not isinstance(account, str) or not isinstance(instrument, str):
            raise ApprovalProblem("Position.Opened lacks its account or instrument")
        if str(position_id(account, instrument)) != originator_id:
            raise ApprovalProblem("Position.Opened: its id is not that of its account/instrument")
        self._accounts[originator_id] = account
        self._opened, self._opened_at = originator_id, position
        self.stats.positions_opened += 1

    def _desk_approval(self, state: dict[str, Any]) -> None:
        approval, command = state.get("approval"), state.get("command")
        if not isinstance(approval, dict) or not isinstance(command, dict):
            raise ApprovalProblem("CommandApproved lacks its approval or command")
        token = self._token(approval)
        fields = dict(command)
        if token.command_type in _FILL_TIMED:
            fields["filled_at"] = _at(fields.get("filled_at"), "filled_at")
        rebuilt = self._command(token.command_type, fields)
        self._verify(token, rebuilt, token.target_version, _at(state.get("timestamp"), "timestamp"))
        self.stats.desk_tokens_verified += 1
        self._desk[str(token.approval_id)] = _DeskRecord(approval, command)
        if len(self._desk) > MAX_PENDING:
            self._desk.popitem(last=False)

    def _token(self, approval: dict[str, Any]) -> ApprovalToken:
        try:
            return ApprovalToken.from_dict(approval)
        except DomainError as exc:
            raise ApprovalProblem(str(exc)) from None

    def _command_type(self, kind: str, state: dict[str, Any]) -> str:
        if kind in _ORDER_COMMANDS:
            return _ORDER_COMMANDS[kind]
        if kind == "TradingSession.Started":
            return "StartSession"
        if kind == "TradingSession.StatusChanged":
            status = state.get("status")
            if status not in _SESSION_STATUS_COMMANDS:
                raise ApprovalProblem(f"TradingSession.StatusChanged to unknown status {status!r}")
            return _SESSION_STATUS_COMMANDS[str(status)]
        if kind == "Position.FillApplied":
            return "ApplyFill"
        raise ApprovalProblem(f"{kind} is not a known state change (no approval rule for it)")

    def _fields(
        self,
        kind: str,
        command_type: str,
        originator_id: str,
        state: dict[str, Any],
        desk: _DeskRecord | None,
    ) -> dict[str, Any] | None:
        """The command's fields rebuilt from the event (None: not all of them are known)."""

        def take(*names: str) -> dict[str, Any]:
            missing = [n for n in names if n not in state]
            if missing:
                raise ApprovalProblem(f"{kind} lacks {', '.join(missing)}")
            return {n: state[n] for n in names}

        if kind == "Order.Placed":
            names = ("session_id", "instrument", "side", "order_type", "quantity")
            return {"order_id": originator_id, **take(*names, "limit_price", "reduce_only")}
        if kind == "Order.Submitted":
            return {"order_id": originator_id, **take("client_order_id")}
        if kind == "Order.Acknowledged":
            return {"order_id": originator_id, **take("exchange_order_id")}
        if kind in ("Order.Canceled", "Order.Rejected", "Order.Expired"):
            return {"order_id": originator_id, **take("reason")}
        if kind == "Order.Filled":
            fill = take("trade_id", "quantity", "price", "fee", "filled_at")
            self._fill_times[(originator_id, str(fill["trade_id"]))] = str(fill["filled_at"])
            if len(self._fill_times) > MAX_PENDING:
                self._fill_times.popitem(last=False)
            fill["filled_at"] = _at(fill["filled_at"], "filled_at")
            return {"order_id": originator_id, **fill}
        if kind == "TradingSession.Started":
            started = take("mode", "starting_capital", "config_digest")
            return {"session_id": originator_id, **started}
        if kind == "TradingSession.StatusChanged":
            return {"session_id": originator_id, **take("reason")}
        assert kind == "Position.FillApplied", command_type
        fill = take("instrument", "side", "order_id", "trade_id", "quantity", "price", "fee")
        key = (str(fill["order_id"]), str(fill["trade_id"]))
        filled_at = self._fill_times.pop(key, None)
        account = self._accounts.get(originator_id)
        if desk is not None:
            account = desk.command.get("account_id", account)
            filled_at = desk.command.get("filled_at", filled_at)
        if account is None or filled_at is None:
            return None
        return {"account_id": account, **fill, "filled_at": _at(filled_at, "filled_at")}

    def _command(self, command_type: str, fields: dict[str, Any]) -> Command:
        try:
            return command_from_dict(command_type, fields)
        except DomainError as exc:
            raise ApprovalProblem(f"cannot rebuild the {command_type} command: {exc}") from None

    def _verify(
        self, token: ApprovalToken, command: Command, target_version: int | None, at: datetime
    ) -> None:
        try:
            Verifier(self.keys, lambda: at).verify(token, command, target_version)
        except DomainError as exc:
            raise ApprovalProblem(str(exc)) from None

    def _check_without_digest(
        self, token: ApprovalToken, target_id: str, target_version: int | None, at: datetime
    ) -> None:
        """Everything `Verifier.verify` checks except the digest (its inputs are not here)."""
        secret = self.keys.secret(token.key_id)
        if secret is None:
            raise ApprovalProblem(f"unknown HMAC key id {token.key_id!r}")
        mac = hmac.new(secret, canonical_bytes(token.signed_fields()), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, token.signature):
            raise ApprovalProblem("approval signature does not verify")
        if token.target_id != UUID(target_id):
            raise ApprovalProblem("approval is for another target")
        if token.target_version != target_version:
            raise ApprovalProblem(
                f"approval is for target version {token.target_version}, "
                f"target is at {target_version} (used or stale)"
            )
        if not token.issued_at <= at < token.expires_at:
            raise ApprovalProblem("the event falls outside the approval's validity window")
