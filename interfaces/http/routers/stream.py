"""GET /v1/stream (viewer): the read models' position as Server-Sent Events.

Each `position` event carries `{"position": N, "head": H, "lag": H - N}` whenever either
moves; a comment line every 15 s keeps proxies from closing an idle stream. The console
reads it with `fetch` (so the token stays in the Authorization header, never in a URL)
and refetches what it shows on every event. Not in the OpenAPI schema: it never ends.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from interfaces.http.auth import VIEWER
from interfaces.http.live import PositionWatcher

router = APIRouter(prefix="/v1", tags=["stream"], route_class=VIEWER)
KEEP_ALIVE_SECONDS = 15.0


@router.get("/stream", include_in_schema=False)
async def stream(request: Request) -> StreamingResponse:
    watcher: PositionWatcher = request.app.state.position_watcher

    async def events() -> AsyncIterator[str]:
        async with watcher.subscribe() as queue:
            yield "retry: 2000\n\n"
            while True:
                try:
                    snapshot = await asyncio.wait_for(queue.get(), KEEP_ALIVE_SECONDS)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                data = {
                    "position": snapshot.position,
                    "head": snapshot.head,
                    "lag": snapshot.lag,
                }
                yield f"event: position\ndata: {json.dumps(data)}\n\n"

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
