"""What the read routers share: documented responses and the position header."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from interfaces.http.freshness import MIN_POSITION, POSITION_HEADER
from interfaces.http.problems import documented

POSITION_HEADER_DOC = {
    POSITION_HEADER: {
        "description": "log position the read model reflects (same as the body's `position`)",
        "schema": {"type": "integer", "minimum": 0},
    }
}


def read_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """A read route's responses: 200 with the position header, and its problems."""
    responses = documented(401, 403, 409, 422, 503, *codes)
    responses[200] = {"headers": POSITION_HEADER_DOC}
    return responses


def read_route(model: type[BaseModel], *codes: int) -> dict[str, Any]:
    """Keyword arguments of a read route: its model, its problems, `min_position`."""
    return {
        "response_model": model,
        "responses": read_responses(*codes),
        "openapi_extra": MIN_POSITION,
    }
