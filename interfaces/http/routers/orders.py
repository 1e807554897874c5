"""GET /v1/orders (the blotter, paged, filtered) and GET /v1/orders/{order_id}."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response

from interfaces.http.auth import VIEWER
from interfaces.http.freshness import fresh, respond
from interfaces.http.models import OrderDetail, OrderPage, OrderStatus
from interfaces.http.pagination import DEFAULT_LIMIT, Cursor, Limit
from interfaces.http.problems import ProblemError
from interfaces.http.routers._common import read_route

router = APIRouter(prefix="/v1/orders", tags=["orders"], route_class=VIEWER)
Instrument = Annotated[
    str | None,
    Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:-]{0,39}$", description="e.g. BTC-USDT"),
]


@router.get("", **read_route(OrderPage, 400))
async def list_orders(
    request: Request,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
    status: OrderStatus | None = None,
    instrument: Instrument = None,
    session_id: UUID | None = None,
) -> Response:
    """Orders in the order they were placed (oldest first), optionally filtered."""
    svc = await fresh(request, "orders")
    data = await svc.reads.call(
        svc.reads.orders,
        cursor,
        limit,
        status=status,
        instrument=instrument,
        session_id=None if session_id is None else str(session_id),
    )
    return respond(OrderPage, data)


@router.get("/{order_id}", **read_route(OrderDetail, 404))
async def get_order(
    order_id: UUID, request: Request
) -> Response:
    """One order; 404 if the read model has no such order (yet: see `min_position`)."""
    svc = await fresh(request, "orders")
    data = await svc.reads.call(svc.reads.order, str(order_id))
    if data is None:
        raise ProblemError(404, "not-found", "Not found", f"no order {order_id}")
    return respond(OrderDetail, data)
