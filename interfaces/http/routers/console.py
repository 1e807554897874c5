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
# The page runs only its own script and style sheet and talks only to this server, so an
# instrument name or reason that smuggled markup into a read model could never run.
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@router.get("/")
async def page() -> FileResponse:
    return FileResponse(CONSOLE_DIR / "index.html", headers=PAGE_HEADERS)


def assets() -> StaticFiles:
    """The script and style sheet (revalidated by ETag, so a warm load is a 304)."""
    return StaticFiles(directory=CONSOLE_DIR)
