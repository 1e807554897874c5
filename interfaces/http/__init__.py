"""HTTP interface: FastAPI read API over the read models and the operator control plane.

Layout (FastAPI "bigger applications"): `app.create_app(settings)` builds the app from
`services.Services` (read store, event log, token file, trading app), one router per
resource in `routers/`, bearer-token auth and the role matrix in `auth`, token hashing in
`tokens`, RFC 9457 problems in `problems`, cursors in `pagination`, `min_position` in
`freshness`. `ais serve` (interfaces/cli_http.py) runs it under uvicorn with the
projector following the log in a background thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from interfaces.http.app import create_app


def __getattr__(name: str) -> Any:
    # Lazy, so `ais token create` does not import FastAPI.
    if name == "create_app":
        from interfaces.http.app import create_app

        return create_app
    raise AttributeError(name)


__all__ = ["create_app"]
