"""The ``/media/twilio`` WebSocket: Twilio Media Streams in, agent speech out. One bad stream is closed with its
reason; the others carry on."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from models.call_contract import MEDIA_STREAM_PATH
from voice.media_stream import protocol
from voice.media_stream.call import MediaStreamCall, StreamRejected
from voice.runtime import VoiceRuntime

log = logging.getLogger(__name__)
router = APIRouter(tags=["media streams"])

PROTOCOL_ERROR = 1007  # invalid payload data
POLICY_VIOLATION = 1008


def _signed_url(runtime: VoiceRuntime, websocket: WebSocket) -> str:
    """The wss:// URL Twilio connected to (and signed), as the public URL names it."""
    public = urlsplit(runtime.settings.stream_public_url)
    scheme = "wss" if public.scheme == "https" else "ws"
    path = public.path.rstrip("/") + websocket.url.path
    return urlunsplit((scheme, public.netloc, path, websocket.url.query, ""))


@router.websocket(MEDIA_STREAM_PATH)
async def twilio_media_stream(websocket: WebSocket) -> None:
    runtime: VoiceRuntime = websocket.app.state.voice
    await websocket.accept()
    call = MediaStreamCall(
        runtime,
        websocket.send_text,
        url=_signed_url(runtime, websocket),
        signature=websocket.headers.get("x-twilio-signature"),
        hang_up=websocket.close,
    )
    try:
        while await call.handle(protocol.parse(await websocket.receive_text())):
            pass
        await websocket.close()
    except WebSocketDisconnect:
        pass
    except protocol.ProtocolError as exc:
        log.warning("media stream closed: malformed message", extra={"reason": str(exc)})
        await websocket.close(code=PROTOCOL_ERROR, reason=str(exc)[:120])
    except StreamRejected as exc:
        log.warning("media stream refused", extra={"reason": str(exc)})
        await websocket.close(code=POLICY_VIOLATION, reason=str(exc)[:120])
    finally:
        await call.close()
