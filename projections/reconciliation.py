"""Reconciliation: each exchange snapshot compared with what the log says we hold.

What we hold is folded from the log alone — session funding and position fills give the
cash and the holdings (the same average-cost fold as the Position aggregate), Order
events give the orders that should be open at the venue. The tolerances are the
ReconciliationPolicy in force when the snapshot was recorded. So the verdicts are a pure
function of the log and a rebuild gives the same rows.

Per snapshot, items are compared:
- spot: every asset balance (cash asset ↔ cash, base assets ↔ holdings, anything else ↔ 0);
- swap: the margin asset's wallet ↔ cash + Σ quantity × average entry, and every position;
- orders: open orders at the venue ↔ our orders submitted and not ended.
|difference| ≤ matched → MATCHED, ≤ drift → DRIFT, beyond → BREAK; an order the venue
has open that we consider filled, rejected or expired is a BREAK.

Under a policy that expects the baseline (shadow: the real account is only read, our
orders and fills are the paper venue's), every snapshot is compared instead with the
baseline: the last snapshot recorded with `baseline` set (else the first one). Balances
and positions are judged with the same tolerances; an order opened or gone since then is a
DRIFT, and an order of ours open at the real account is a BREAK (shadow leaked an order).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from domain.position import Lot, apply_fill
from domain.reconciliation import (
    APPLY_FILLS,
    BREAK,
    CANCEL_AT_VENUE,
    DRIFT,
    EXPECT_BASELINE,
    LOOKUP,
    MATCHED,
    UNKNOWN_ORDER,
    Policy,
    worst,
)
from domain.values import Side
from projections.spec import LoggedEvent, Row, Rows, TableSpec, dec, num

ZERO = Decimal(0)
_OPEN = frozenset({"SUBMITTED", "OPEN", "PARTIALLY_FILLED"})
_ENDINGS = {"Order.Canceled": "CANCELED", "Order.Rejected": "REJECTED", "Order.Expired": "EXPIRED"}

RESULTS = TableSpec(
    "reconciliation",
    ("venue", "snapshot", "taken_at", "status", "matched", "drift", "breaks", "position"),
    ("venue", "snapshot"),
    ("snapshot", "matched", "drift", "breaks", "position"),
)
ITEMS = TableSpec(
    "reconciliation_items",
    (
        "venue",
        "snapshot",
        "kind",
        "item",
        "expected",
        "observed",
        "difference",
        "matched_within",
        "drift_within",
        "status",
        "note",
        "action",
    ),
    ("venue", "snapshot", "kind", "item"),
    ("snapshot",),
)
# The fold this projection keeps to judge snapshots with.
_CASH = TableSpec("recon_cash", ("id", "cash"), ("id",), ("id",))
_LOTS = TableSpec("recon_lots", ("instrument", "quantity", "average_entry"), ("instrument",))
_ORDERS = TableSpec(
    "recon_orders",
    ("order_id", "client_order_id", "instrument", "side", "quantity", "filled", "status"),
    ("order_id",),
)
_CLIENT_IDS = TableSpec("recon_client_ids", ("client_order_id", "order_id"), ("client_order_id",))
_ACCOUNTS = TableSpec("recon_accounts", ("account_id", "venue"), ("account_id",))
_POLICIES = TableSpec("recon_policies", ("venue", "policy"), ("venue",))
# What a baseline policy judges snapshots against: one normalized snapshot per venue.
_BASELINES = TableSpec("recon_baselines", ("venue", "snapshot", "held"), ("venue",), ("snapshot",))

# Besides Order.*: what `handle` folds; the projector skips the rest (half the log is
# the desk's approvals and marks).
_WANTED = frozenset(
    {
        "TradingSession.Started",
        "Position.FillApplied",
        "ExchangeAccount.Opened",
        "ExchangeAccount.SnapshotRecorded",
        "ReconciliationPolicy.Set",
        "ReconciliationPolicy.Changed",
    }
)


def _text(value: Decimal) -> str:
    return num(value.normalize()) if value else "0"


class ReconciliationProjection:
    name = "reconciliation"
    version = 2
    handling_cost = 0.85  # per event, for splitting a rebuild (projections.lanes)
    tables: tuple[TableSpec, ...] = (
        RESULTS,
        ITEMS,
        _CASH,
        _LOTS,
        _ORDERS,
        _CLIENT_IDS,
        _ACCOUNTS,
        _POLICIES,
        _BASELINES,
    )

    def wants(self, kind: str) -> bool:
        return kind in _WANTED or kind.startswith("Order.")

    def handle(self, event: LoggedEvent, rows: Rows) -> None:
        kind, s = event.kind, event.state
        if kind == "TradingSession.Started":
            if all(dec(r["quantity"]) == 0 for r in rows.scan("recon_lots")):
                rows.put("recon_cash", {"id": 1, "cash": str(dec(s["starting_capital"]))})
        elif kind == "Position.FillApplied":
            self._fill(s, rows)
        elif kind.startswith("Order."):
            self._order(event, rows)
        elif kind == "ExchangeAccount.Opened":
            rows.put("recon_accounts", {"account_id": event.originator_id, "venue": s["venue"]})
        elif kind in ("ReconciliationPolicy.Set", "ReconciliationPolicy.Changed"):
            text = json.dumps(s["policy"], sort_keys=True, separators=(",", ":"))
            rows.put("recon_policies", {"venue": s["venue"], "policy": text})
        elif kind == "ExchangeAccount.SnapshotRecorded":
            self._snapshot(event, rows)

    # --- the fold ----------------------------------------------------------------------------
    @staticmethod
    def _fill(s: dict[str, Any], rows: Rows) -> None:
        side, quantity, price, fee = (
            Side(s["side"]),
            dec(s["quantity"]),
            dec(s["price"]),
            dec(s["fee"]),
        )
        held = rows.get("recon_lots", (s["instrument"],))
        lot = Lot(dec(held["quantity"]), dec(held["average_entry"])) if held else Lot()
        lot = apply_fill(lot, side, quantity, price, fee)
        rows.put(
            "recon_lots",
            {
                "instrument": s["instrument"],
                "quantity": str(lot.quantity),
                "average_entry": str(lot.average_entry),
            },
        )
        cash = rows.get("recon_cash", (1,))
        balance = (dec(cash["cash"]) if cash else ZERO) - side.sign * quantity * price - fee
        rows.put("recon_cash", {"id": 1, "cash": str(balance)})

    @staticmethod
    def _order(event: LoggedEvent, rows: Rows) -> None:
        s = event.state
        if event.kind == "Order.Placed":
            rows.put(
                "recon_orders",
                {
                    "order_id": event.originator_id,
                    "client_order_id": None,
                    "instrument": s["instrument"],
                    "side": s["side"],
                    "quantity": str(s["quantity"]),
                    "filled": "0",
                    "status": "PENDING_NEW",
                },
            )
            return
        row = rows.get("recon_orders", (event.originator_id,))
        if row is None:
            raise LookupError(f"{event.kind} at {event.position} for unknown order")
        if event.kind == "Order.Submitted":
            row.update(status="SUBMITTED", client_order_id=s["client_order_id"])
            rows.put(
                "recon_client_ids",
                {"client_order_id": s["client_order_id"], "order_id": event.originator_id},
            )
        elif event.kind == "Order.Acknowledged":
            row["status"] = "OPEN"
        elif event.kind in _ENDINGS:
            row["status"] = _ENDINGS[event.kind]
        elif event.kind == "Order.Filled":
            filled = dec(row["filled"]) + dec(s["quantity"])
            row["filled"] = str(filled)
            if s["anomaly"] is None:  # as the aggregate: an anomalous fill leaves the status
                row["status"] = "FILLED" if filled >= dec(row["quantity"]) else "PARTIALLY_FILLED"
        rows.put("recon_orders", row)

    # --- a snapshot ----------------------------------------------------------------------------
    def _snapshot(self, event: LoggedEvent, rows: Rows) -> None:
        s = event.state
        account = rows.get("recon_accounts", (event.originator_id,))
        if account is None:
            raise LookupError(f"snapshot at {event.position} for an unopened exchange account")
        venue = account["venue"]
        found = rows.get("recon_policies", (venue,))
        policy = Policy.from_dict(json.loads(found["policy"])) if found else Policy()
        if policy.expect == EXPECT_BASELINE:
            items = self._against_baseline(policy, rows, venue, event)
        else:
            cash_row = rows.get("recon_cash", (1,))
            cash = dec(cash_row["cash"]) if cash_row else ZERO
            lots = {
                r["instrument"]: Lot(dec(r["quantity"]), dec(r["average_entry"]))
                for r in rows.scan("recon_lots")
            }
            items = self._holdings(policy, cash, lots, s)
            items += self._orders(rows, s["open_orders"])
        snapshot = event.originator_version
        for item in items:
            rows.put("reconciliation_items", {"venue": venue, "snapshot": snapshot, **item})
        statuses = [i["status"] for i in items]
        rows.put(
            "reconciliation",
            {
                "venue": venue,
                "snapshot": snapshot,
                "taken_at": s["taken_at"].isoformat(),
                "status": worst(statuses),
                "matched": statuses.count(MATCHED),
                "drift": statuses.count(DRIFT),
                "breaks": statuses.count(BREAK),
                "position": event.position,
            },
        )

    @staticmethod
    def _holdings(
        policy: Policy, cash: Decimal, lots: dict[str, Lot], s: dict[str, Any]
    ) -> list[Row]:
        observed = {a: dec(b["total"]) for a, b in s["balances"].items()}
        expected: dict[str, Decimal] = {policy.cash_asset: cash}
        items: list[Row] = []
        instruments = sorted(set(policy.instruments) | set(lots))
        if policy.market == "spot":
            for instrument in instruments:
                base, _ = policy.assets_of(instrument)
                held = lots.get(instrument, Lot()).quantity
                expected[base] = expected.get(base, ZERO) + held
        else:
            expected[policy.cash_asset] = cash + sum(
                (lot.quantity * lot.average_entry for lot in lots.values()), ZERO
            )
            positions = {p["instrument"]: dec(p["quantity"]) for p in s["positions"]}
            for instrument in sorted(set(instruments) | set(positions)):
                base, _ = policy.assets_of(instrument)
                items.append(
                    _compare(
                        "position",
                        instrument,
                        lots.get(instrument, Lot()).quantity,
                        positions.get(instrument, ZERO),
                        policy,
                        base,
                    )
                )
        for asset in sorted(set(expected) | set(observed)):
            if asset in policy.ignore_assets:
                continue
            items.append(
                _compare(
                    "balance",
                    asset,
                    expected.get(asset, ZERO),
                    observed.get(asset, ZERO),
                    policy,
                    asset,
                )
            )
        return items

    @staticmethod
    def _orders(rows: Rows, open_orders: list[dict[str, Any]]) -> list[Row]:
        at_venue = {_order_key(o): o for o in open_orders}
        ours = {r["client_order_id"]: r for r in rows.scan("recon_orders") if r["status"] in _OPEN}
        items = []
        for client_id in sorted(set(at_venue) | set(ours)):
            venue_order = at_venue.get(client_id)
            order = ours.get(client_id)
            if order is None and venue_order is not None:
                known = rows.get("recon_client_ids", (client_id,))
                if known is not None:
                    order = rows.get("recon_orders", (known["order_id"],))
            items.append(_order_item(client_id, order, venue_order))
        return items

    # --- against the baseline (shadow) ---------------------------------------------------------
    @staticmethod
    def _against_baseline(policy: Policy, rows: Rows, venue: str, event: LoggedEvent) -> list[Row]:
        now = _held(event.state)
        base = rows.get("recon_baselines", (venue,))
        if event.state.get("baseline") or base is None:
            base = {
                "venue": venue,
                "snapshot": event.originator_version,
                "held": json.dumps(now, sort_keys=True, separators=(",", ":")),
            }
            rows.put("recon_baselines", base)
        before = json.loads(base["held"])
        basis = f" since baseline snapshot {base['snapshot']}"
        items: list[Row] = []
        for kind, group in (("position", "positions"), ("balance", "balances")):
            was, is_ = before[group], now[group]
            for name in sorted(set(was) | set(is_)):
                if kind == "balance" and name in policy.ignore_assets:
                    continue
                asset = policy.assets_of(name)[0] if kind == "position" else name
                expected, observed = dec(was.get(name, ZERO)), dec(is_.get(name, ZERO))
                items.append(_compare(kind, name, expected, observed, policy, asset, basis))
        for key in sorted(set(before["orders"]) | set(now["orders"])):
            ours = rows.get("recon_client_ids", (key,)) is not None
            orders = before["orders"].get(key), now["orders"].get(key)
            items.append(_baseline_order_item(key, *orders, ours))
        return items


def _held(s: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A snapshot as decimal text: balances and positions by name, open orders by key as
    [quantity, filled]; the part of it a baseline keeps."""
    return {
        "balances": {a: _text(dec(b["total"])) for a, b in s["balances"].items()},
        "positions": {p["instrument"]: _text(dec(p["quantity"])) for p in s["positions"]},
        "orders": {
            _order_key(o): [_text(dec(o["quantity"])), _text(dec(o["filled"]))]
            for o in s["open_orders"]
        },
    }


def _baseline_order_item(
    key: str, before: list[str] | None, now: list[str] | None, ours: bool
) -> Row:
    """An open order at the real account compared with the baseline: none of them is ours."""
    expected = None if before is None else dec(before[0]) - dec(before[1])
    observed = None if now is None else dec(now[0]) - dec(now[1])
    action = ""
    if before is not None and before == now:
        status, note = MATCHED, ""
    elif now is None:
        status, note = DRIFT, "open at the baseline, no longer open at the venue"
    elif ours and before is None:
        status, note = BREAK, "an order of this system is open at the real account"
    elif before is None:
        status, note, action = DRIFT, "opened at the venue since the baseline", UNKNOWN_ORDER
    else:
        status, note = DRIFT, f"quantity/filled {'/'.join(now)}, at the baseline {'/'.join(before)}"
    return _order_row(key, expected, observed, status, note, action)


def _order_row(
    key: str,
    expected: Decimal | None,
    observed: Decimal | None,
    status: str,
    note: str,
    action: str,
) -> Row:
    return {
        "kind": "order",
        "item": key,
        "expected": None if expected is None else _text(expected),
        "observed": None if observed is None else _text(observed),
        "difference": None if expected is None or observed is None else _text(observed - expected),
        "matched_within": "0",
        "drift_within": "0",
        "status": status,
        "note": note,
        "action": action,
    }


def _order_key(order: dict[str, Any]) -> str:
    return str(order["client_order_id"] or f"venue:{order['exchange_order_id']}")


def _compare(
    kind: str,
    item: str,
    expected: Decimal,
    observed: Decimal,
    policy: Policy,
    asset: str,
    basis: str = "",
) -> Row:
    tolerance = policy.tolerance(asset)
    difference = observed - expected
    status = tolerance.classify(difference)
    note = f"{kind} differs by {_text(difference)} {asset}{basis}"
    return {
        "kind": kind,
        "item": item,
        "expected": _text(expected),
        "observed": _text(observed),
        "difference": _text(difference),
        "matched_within": _text(tolerance.matched),
        "drift_within": _text(tolerance.drift),
        "status": status,
        "note": "" if status == MATCHED else note,
        "action": "",
    }


def _order_item(client_id: str, order: Row | None, venue: dict[str, Any] | None) -> Row:
    expected = observed = None
    if order is not None:
        expected = dec(order["quantity"]) - dec(order["filled"])
    if venue is not None:
        observed = dec(venue["quantity"]) - dec(venue["filled"])
    action = ""
    if order is None:
        status, note, action = DRIFT, "open at the venue, not placed by this system", UNKNOWN_ORDER
    elif venue is None:
        status, note = DRIFT, f"{order['status']} here, not open at the venue: resolve by lookup"
        action = LOOKUP
    elif order["status"] == "CANCELED":
        status, note = DRIFT, "canceled here, still open at the venue: cancel it there"
        action = CANCEL_AT_VENUE
    elif order["status"] not in _OPEN:
        status, note = BREAK, f"{order['status']} here, open at the venue"
    elif dec(venue["quantity"]) != dec(order["quantity"]):
        status, note = BREAK, f"quantity {venue['quantity']} at the venue, {order['quantity']} here"
    elif expected == observed:
        status, note = MATCHED, ""
    elif observed is not None and expected is not None and observed < expected:
        status, note, action = DRIFT, "filled more at the venue: fills not yet applied", APPLY_FILLS
    else:
        status, note = BREAK, "filled more here than at the venue"
    return _order_row(client_id, expected, observed, status, note, action)
