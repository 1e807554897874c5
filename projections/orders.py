"""Orders blotter: status, filled quantity, average price, fees and the placing approval."""

from __future__ import annotations

from projections.spec import LoggedEvent, Rows, TableSpec, dec, money, num

ORDERS = TableSpec(
    "orders",
    (
        "order_id",
        "session_id",
        "instrument",
        "side",
        "order_type",
        "quantity",
        "limit_price",
        "reduce_only",
        "status",
        "filled_quantity",
        "filled_notional",
        "average_price",
        "fees",
        "approval_id",
        "client_order_id",
        "exchange_order_id",
        "end_reason",
        "anomalies",
        "placed_at",
        "updated_at",
        "version",
    ),
    ("order_id",),
    ("anomalies", "version"),
)
_ENDINGS = {"Order.Canceled": "CANCELED", "Order.Rejected": "REJECTED", "Order.Expired": "EXPIRED"}


class OrdersProjection:
    name = "orders"
    version = 2
    handling_cost = 1.15  # per event, for splitting a rebuild (projections.lanes)
    tables: tuple[TableSpec, ...] = (ORDERS,)

    def wants(self, kind: str) -> bool:
        return kind.startswith("Order.")

    def handle(self, event: LoggedEvent, rows: Rows) -> None:
        if not self.wants(event.kind):
            return
        s = event.state
        at = event.at
        if event.kind == "Order.Placed":
            rows.put(
                "orders",
                {
                    "order_id": event.originator_id,
                    "session_id": str(s["session_id"]),
                    "instrument": s["instrument"],
                    "side": s["side"],
                    "order_type": s["order_type"],
                    "quantity": str(s["quantity"]),
                    "limit_price": money(s["limit_price"]),
                    "reduce_only": "true" if s["reduce_only"] else "false",
                    "status": "PENDING_NEW",
                    "filled_quantity": "0",
                    "filled_notional": "0",
                    "average_price": None,
                    "fees": "0",
                    "approval_id": s["approval"]["approval_id"],
                    "client_order_id": None,
                    "exchange_order_id": None,
                    "end_reason": None,
                    "anomalies": 0,
                    "placed_at": at,
                    "updated_at": at,
                    "version": event.originator_version,
                },
            )
            return
        row = rows.get("orders", (event.originator_id,))
        if row is None:  # the log is ordered: a Placed event always comes first
            raise LookupError(f"{event.kind} at {event.position} for unknown order")
        row = {**row, "updated_at": at, "version": event.originator_version}
        if event.kind == "Order.Submitted":
            row.update(status="SUBMITTED", client_order_id=s["client_order_id"])
        elif event.kind == "Order.Acknowledged":
            row.update(status="OPEN", exchange_order_id=s["exchange_order_id"])
        elif event.kind in _ENDINGS:
            row.update(status=_ENDINGS[event.kind], end_reason=s["reason"])
        elif event.kind == "Order.Filled":
            self._fill(row, s)
        rows.put("orders", row)

    @staticmethod
    def _fill(row: dict[str, object], s: dict[str, object]) -> None:
        filled = dec(row["filled_quantity"]) + dec(s["quantity"])
        notional = dec(row["filled_notional"]) + dec(s["quantity"]) * dec(s["price"])
        row.update(
            filled_quantity=str(filled),
            filled_notional=str(notional),
            average_price=num(notional / filled),
            fees=str(dec(row["fees"]) + dec(s["fee"])),
        )
        if s["anomaly"] is not None:
            row["anomalies"] = int(str(row["anomalies"])) + 1
        elif filled >= dec(row["quantity"]):
            row["status"] = "FILLED"
        else:
            row["status"] = "PARTIALLY_FILLED"
