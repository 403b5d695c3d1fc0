"""The console WebSocket (``models.console_protocol.PATH``): a browser tab or ``telephony call`` talking to an
agent. A refused or broken socket is closed with its code and reason; other calls carry on."""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, WebSocket

from models import console_protocol as p
from voice.console.call import ConsoleCall
from voice.media_stream.drain import TRY_AGAIN_LATER
from voice.runtime import VoiceRuntime

router = APIRouter(tags=["console"])


@router.websocket(p.PATH)
async def console_socket(websocket: WebSocket) -> None:
    runtime: VoiceRuntime = websocket.app.state.voice
    if runtime.drain.draining:  # SIGTERM: the client reconnects to another media process
        await websocket.close(code=TRY_AGAIN_LATER, reason="draining")
        return
    with runtime.drain.socket():
        await websocket.accept()
        outcome = await ConsoleCall(runtime, websocket).run()
        with contextlib.suppress(Exception):  # the client may already be gone
            await websocket.close(code=outcome.code, reason=outcome.reason)
