"""Serves the console WebSocket wherever media streams are served (``telephony media`` composes it in after
``MediaStreamExtension``, whose voice runtime and warm models it shares)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from voice.console.router import router
from voice.runtime import VoiceRuntime


class ConsoleExtension:
    router = router

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        state = app.state
        if getattr(state, "voice", None) is not None:
            yield  # the media-stream extension built the runtime
            return
        runtime = VoiceRuntime(state.settings, state.sessions, await state.temporal.calls(), state.secret_box)
        state.voice = runtime
        warming = asyncio.create_task(runtime.warm_up())
        try:
            yield
        finally:
            if not warming.done():
                warming.cancel()
