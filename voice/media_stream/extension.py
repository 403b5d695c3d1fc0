"""Serves media streams from the API process: ``telephony api`` / ``telephony dev`` compose this in."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from voice.media_stream.router import router
from voice.runtime import VoiceRuntime

log = logging.getLogger(__name__)


class MediaStreamExtension:
    router = router

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        state = app.state
        runtime = VoiceRuntime(state.settings, state.sessions, await state.temporal.calls(), state.secret_box)
        state.voice = runtime
        # Models load in the background: the API answers at once, the first call finds them warm.
        warming = asyncio.create_task(runtime.warm_up())
        try:
            yield
        finally:
            if not warming.done():
                warming.cancel()
