"""The console page (``/console``): talk to a space's agent from the browser. Static files, no build step, no
CDN; the page signs in with an API key kept in the tab's session storage and calls over the console socket."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse

from models.console_protocol import PAGE_PATH

router = APIRouter(tags=["console"], include_in_schema=False)

STATIC = Path(__file__).resolve().parent.parent / "static" / "console"
FILES = {
    "console.js": "text/javascript",
    "capture-worklet.js": "text/javascript",
    "playback-worklet.js": "text/javascript",
    "console.css": "text/css",
}
# The page loads nothing from elsewhere; the microphone is for this origin only.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'",
    "Cache-Control": "no-cache",
}


@router.get(PAGE_PATH)
async def console_page() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=HEADERS)


@router.get(PAGE_PATH + "/{name}")
async def console_file(name: str) -> FileResponse:
    if name not in FILES:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such console file")
    return FileResponse(STATIC / name, media_type=FILES[name], headers=HEADERS)
