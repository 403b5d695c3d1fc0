"""Runs ``telephony media`` under uvicorn with a graceful drain on ``SIGTERM`` (see ``voice.media_stream.drain``).

uvicorn's own ``SIGTERM`` handling closes every open WebSocket with 1012 at once: every call on the process
would lose its agent (and a stream closed without ``stop`` hangs its call up). Here the first ``SIGTERM`` drains
instead, and the server shuts down once the drain is over; ``SIGINT`` (or a second ``SIGTERM``) still stops at
once, as before."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from types import FrameType

import uvicorn
from fastapi import FastAPI

from models.settings import Settings
from voice.runtime import VoiceRuntime

log = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI, drain_seconds: float, shared_port: bool) -> None:
        super().__init__(config)
        self._app = app
        self._shared_port = shared_port
        self._drain_seconds = drain_seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining: asyncio.Task[None] | None = None

    async def serve(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)  # type: ignore[arg-type]

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM or self._draining is not None or self._loop is None or not self.started:
            super().handle_exit(sig, frame)  # SIGINT, a second SIGTERM, or before start-up: stop now
            return
        self._loop.call_soon_threadsafe(self._begin_drain)

    def _begin_drain(self) -> None:
        if self._draining is None:
            self._draining = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        runtime: VoiceRuntime = self._app.state.voice
        if self._shared_port:
            for server in self.servers:  # the kernel sends new streams to the processes sharing the port
                server.close()
        try:
            await runtime.drain.run(self._drain_seconds, runtime.streams.live)
        except Exception:
            log.exception("media drain failed")
        finally:
            self.should_exit = True


def run_media_server(app: FastAPI, settings: Settings) -> None:
    config = uvicorn.Config(
        app,
        host=settings.media_host,
        port=settings.media_port,
        log_level="info",
        log_config=None,  # uvicorn logs through our structured handler
        access_log=False,
        # Media frames are base64 μ-law in JSON, 50 a second per call each way: compressing them (permessage-deflate,
        # on by default) cost more CPU than the JSON parsing, for a few hundred bytes a frame on a carrier's link.
        ws_per_message_deflate=False,
    )
    server = DrainingServer(config, app, settings.media_drain_seconds, settings.media_reuse_port)
    if not settings.media_reuse_port:
        server.run()
        return
    # Several media processes on one port: each binds with SO_REUSEPORT and the kernel spreads new connections
    # over those listening. uvicorn listens only once start-up (model loading) is done, so none reach a process
    # still loading; a draining one stops listening, so none reach it either.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((settings.media_host, settings.media_port))
    server.run(sockets=[sock])
