"""The operator console: `/` is its page, `/console/*` its script and style sheet.

A static front end without a build step (interfaces/http/console/): the page signs in
with an API token and reads the same `/v1` routes, under the same roles, as any other
client. These routes are open: they hold no data, only the code that asks for it.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

CONSOLE_DIR = Path(__file__).resolve().parents[1] / "console"
router = APIRouter(include_in_schema=False)


@router.get("/")
async def page() -> FileResponse:
    return FileResponse(CONSOLE_DIR / "index.html", headers={"Cache-Control": "no-cache"})


def assets() -> StaticFiles:
    """The script and style sheet (revalidated by ETag, so a warm load is a 304)."""
    return StaticFiles(directory=CONSOLE_DIR)
