"""The console page (``/console``): talk to a space's agent from the browser. Static files, no build step, no
CDN; the page signs in with an API key kept in the tab's session storage and calls over the console socket."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse

from api.deps import SettingsDep
from models.console_protocol import PAGE_PATH
from models.console_protocol import PATH as SOCKET_PATH
from models.settings import Settings

router = APIRouter(tags=["console"], include_in_schema=False)

STATIC = Path(__file__).resolve().parent.parent / "static" / "console"
FILES = {
    "console.js": "text/javascript",
    "sms.js": "text/javascript",
    "capture-worklet.js": "text/javascript",
    "playback-worklet.js": "text/javascript",
    "console.css": "text/css",
}


def socket_url(settings: Settings) -> str | None:
    """Where the console's audio socket is: the media servers when they have their own URL, else this origin."""
    if not settings.media_public_url:
        return None
    media = urlsplit(settings.media_public_url)
    scheme = "wss" if media.scheme in ("https", "wss") else "ws"
    return urlunsplit((scheme, media.netloc, media.path.rstrip("/") + SOCKET_PATH, "", ""))


def _headers(settings: Settings) -> dict[str, str]:
    # The page loads nothing from elsewhere; it talks to this origin and to the media servers' socket only.
    url = socket_url(settings)
    media = f" {urlsplit(url).scheme}://{urlsplit(url).netloc}" if url else ""
    return {
        "Content-Security-Policy": f"default-src 'self'; connect-src 'self'{media}; img-src 'self' data:; "
        "base-uri 'none'",
        "Cache-Control": "no-cache",
    }


@router.get(PAGE_PATH)
async def console_page(settings: SettingsDep) -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=_headers(settings))


@router.get(PAGE_PATH + "/config.json")
async def console_config(settings: SettingsDep) -> dict[str, str | None]:
    """What the page and ``telephony call`` need to open the audio socket (``null``: this origin)."""
    return {"socket_url": socket_url(settings)}


@router.get(PAGE_PATH + "/{name}")
async def console_file(name: str, settings: SettingsDep) -> FileResponse:
    if name not in FILES:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such console file")
    return FileResponse(STATIC / name, media_type=FILES[name], headers=_headers(settings))
