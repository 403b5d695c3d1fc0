"""The FastAPI application: clients are built in ``lifespan`` from the settings it is given."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Protocol

from fastapi import APIRouter, FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError

from api.routes import (
    agents,
    api_keys,
    calls,
    carrier_accounts,
    conversations,
    health,
    phone_numbers,
    recordings,
    sip_trunks,
    spaces,
)
from api.temporal import TemporalGateway
from api.webhooks import livekit as livekit_webhooks
from api.webhooks import twilio as twilio_webhooks
from models.db import create_engine, session_factory
from models.secret_box import SecretBox
from models.settings import Settings
from storage import build_store

log = logging.getLogger(__name__)


async def _integrity_error(request: Request, exc: Exception) -> JSONResponse:
    log.info("request conflicted with a database constraint", extra={"path": request.url.path})
    return JSONResponse(
        {"detail": "conflicts with an existing resource or a reference to it"},
        status_code=status.HTTP_409_CONFLICT,
    )


class AppExtension(Protocol):
    """A part served by the same app but built elsewhere (the voice runtime's media streams): the process
    entry point composes it in, so the API itself depends on nothing but ``models``."""

    router: APIRouter

    def lifespan(self, app: FastAPI) -> AbstractAsyncContextManager[None]: ...


def create_app(
    settings: Settings, temporal: TemporalGateway | None = None, extensions: Sequence[AppExtension] = ()
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.resolved_database_url)
        app.state.settings = settings
        app.state.engine = engine
        app.state.sessions = session_factory(engine)
        app.state.secret_box = SecretBox.from_setting(
            settings.secret_keys.get_secret_value() if settings.secret_keys else None, settings.data_dir
        )
        app.state.temporal = temporal or TemporalGateway(settings)
        app.state.store = build_store(settings)
        try:
            async with AsyncExitStack() as stack:
                for extension in extensions:
                    await stack.enter_async_context(extension.lifespan(app))
                yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="Bivariant Telephony",
        version="0.1.0",
        description="Phone numbers, SIP trunks, agents and calls of a space. "
        "Authenticate with `Authorization: Bearer <api key>`.",
        lifespan=lifespan,
    )
    app.add_exception_handler(IntegrityError, _integrity_error)
    for module in (
        health,
        spaces,
        api_keys,
        carrier_accounts,
        sip_trunks,
        phone_numbers,
        agents,
        conversations,
        calls,
        recordings,
        twilio_webhooks,
        livekit_webhooks,
    ):
        app.include_router(module.router)
    for extension in extensions:
        app.include_router(extension.router)
    return app
