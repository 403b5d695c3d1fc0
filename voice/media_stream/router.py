"""The ``/media/twilio`` WebSocket: Twilio Media Streams in, agent speech out. One bad stream is closed with its
reason; the others carry on."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from models.call_contract import MEDIA_STREAM_PATH
from voice.media_stream import protocol
from voice.media_stream.call import MediaStreamCall, StreamRejected
from voice.media_stream.drain import TRY_AGAIN_LATER
from voice.media_stream.frames import FrameLimits, FrameRejected, silent_too_long, text_of
from voice.runtime import VoiceRuntime

log = logging.getLogger(__name__)
router = APIRouter(tags=["media streams"])

PROTOCOL_ERROR = 1007  # invalid payload data
POLICY_VIOLATION = 1008


def _reason(text: str) -> str:
    """A close reason fits in 123 bytes of UTF-8."""
    return text.encode("utf-8")[:120].decode("utf-8", "ignore")


def _signed_url(runtime: VoiceRuntime, websocket: WebSocket) -> str:
    """The wss:// URL Twilio connected to (and signed), as the public URL names it."""
    public = urlsplit(runtime.settings.stream_public_url)
    scheme = "wss" if public.scheme == "https" else "ws"
    path = public.path.rstrip("/") + websocket.url.path
    return urlunsplit((scheme, public.netloc, path, websocket.url.query, ""))


async def _messages(websocket: WebSocket, call: MediaStreamCall, limits: FrameLimits) -> None:
    """Hand each message to the call until it is over; the first ``start`` must come within the timeout."""
    deadline = asyncio.get_running_loop().time() + limits.start_timeout
    started = False
    while True:
        try:
            async with asyncio.timeout_at(None if started else deadline):
                text = text_of(await websocket.receive(), limits)
        except TimeoutError:
            raise silent_too_long(limits) from None
        if text is None:
            return
        message = protocol.parse(text)
        started = started or isinstance(message, protocol.Start)
        if not await call.handle(message):
            await websocket.close()
            return


@router.websocket(MEDIA_STREAM_PATH)
async def twilio_media_stream(websocket: WebSocket) -> None:
    runtime: VoiceRuntime = websocket.app.state.voice
    if runtime.drain.draining:  # SIGTERM: the carrier opens the stream on another media process
        log.info("media stream refused: this media server is draining")
        await websocket.close(code=TRY_AGAIN_LATER, reason="draining")
        return
    with runtime.drain.socket():
        await _serve(websocket, runtime)


async def _serve(websocket: WebSocket, runtime: VoiceRuntime) -> None:
    settings = runtime.settings
    limits = FrameLimits(settings.media_stream_max_message, settings.media_stream_start_timeout)
    await websocket.accept()
    call = MediaStreamCall(
        runtime,
        websocket.send_text,
        url=_signed_url(runtime, websocket),
        signature=websocket.headers.get("x-twilio-signature"),
        hang_up=websocket.close,
    )
    try:
        await _messages(websocket, call, limits)
    except WebSocketDisconnect:
        pass
    except FrameRejected as exc:
        log.warning("media stream closed: frame refused", extra={"code": exc.code, "reason": exc.reason})
        await websocket.close(code=exc.code, reason=exc.reason)
    except protocol.ProtocolError as exc:
        log.warning("media stream closed: malformed message", extra={"reason": str(exc)})
        await websocket.close(code=PROTOCOL_ERROR, reason=_reason(str(exc)))
    except StreamRejected as exc:
        log.warning("media stream refused", extra={"reason": str(exc)})
        await websocket.close(code=POLICY_VIOLATION, reason=_reason(str(exc)))
    finally:
        await call.close()
