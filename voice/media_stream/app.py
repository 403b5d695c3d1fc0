"""The ``telephony media`` application: carrier media streams, the console's audio socket and a health check,
nothing else (no REST, no webhooks), so voice capacity grows with media processes while the API stays light."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response

from api.temporal import TemporalGateway
from models.db import create_engine, session_factory
from models.secret_box import SecretBox
from models.settings import Settings
from voice.console.extension import ConsoleExtension
from voice.media_stream.extension import MediaStreamExtension


def create_media_app(settings: Settings) -> FastAPI:
    extension, console = MediaStreamExtension(), ConsoleExtension()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.resolved_database_url)
        app.state.settings = settings
        app.state.sessions = session_factory(engine)
        app.state.secret_box = SecretBox.from_setting(
            settings.secret_keys.get_secret_value() if settings.secret_keys else None, settings.data_dir
        )
        app.state.temporal = TemporalGateway(settings)
        try:
            async with extension.lifespan(app), console.lifespan(app):
                yield
        finally:
            await engine.dispose()

    app = FastAPI(title="Bivariant Telephony media streams", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.include_router(extension.router)
    app.include_router(console.router)  # the console page's audio (the page itself is served by the API)

    @app.get("/healthz", include_in_schema=False)
    async def healthz(response: Response) -> dict[str, str | int]:
        runtime = app.state.voice
        if runtime.drain.draining:  # a load balancer sends new streams elsewhere
            response.status_code = 503
        status = "draining" if runtime.drain.draining else "ok"
        return {"status": status, "streams": len(runtime.streams), "sockets": runtime.drain.sockets, "pid": os.getpid()}

    return app
