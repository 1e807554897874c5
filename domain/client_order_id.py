"""Client order ids derived from Order ids: the same Order always goes out under one id.

"ais" + the 32 hex digits of the Order's UUID is 35 characters, within Binance's 36
(`^[\\.A-Z\\:/a-z0-9_-]{1,36}$`, spot and USDⓈ-M alike). Keeping every digit makes the
mapping reversible, so a fill or an open order seen at the venue names its Order
without any lookup table — also after a restart.
"""

from __future__ import annotations

from uuid import UUID

PREFIX = "ais"
MAX_LENGTH = 36


def client_order_id(order_id: UUID) -> str:
    return f"{PREFIX}{order_id.hex}"


def order_id_from_client_id(client_order_id: str | None) -> UUID | None:
    """The Order id a client order id was derived from; None for anyone else's id."""
    if client_order_id is None or not client_order_id.startswith(PREFIX):
        return None
    digits = client_order_id[len(PREFIX) :]
    if len(digits) != 32:
        return None
    try:
        order_id = UUID(hex=digits)
    except ValueError:
        return None
    return order_id if order_id.hex == digits else None
