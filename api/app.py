"""The FastAPI application: clients are built in ``lifespan`` from the settings it is given."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Protocol

from fastapi import APIRouter, FastAPI

from api.carrier_directory import CarrierDirectory
from api.errors import error_responses, install_error_model
from api.limits import BodyLimitMiddleware, BodyLimits
from api.routes import (
    agents,
    api_keys,
    assets,
    calls,
    campaigns,
    carrier_accounts,
    console,
    conversations,
    do_not_call,
    flows,
    health,
    phone_numbers,
    recordings,
    sip_trunks,
    sms,
    spaces,
)
from api.temporal import TemporalGateway
from api.webhooks import livekit as livekit_webhooks
from api.webhooks import twilio as twilio_webhooks
from api.webhooks import twilio_amd as twilio_amd_webhooks
from api.webhooks import twilio_sms as twilio_sms_webhooks
from api.webhooks import twilio_stream as twilio_stream_webhooks
from models.db import create_engine, session_factory
from models.secret_box import SecretBox
from models.settings import Settings
from storage import build_store

log = logging.getLogger(__name__)

# Error answers every REST operation can give; routes add their own (409, 502, 503) where they occur.
REST_ERRORS = error_responses(400, 401, 403, 404, 413, 422)
TWILIO_ERRORS = error_responses(400, 403, 413, 415, 503)
LIVEKIT_ERRORS = error_responses(400, 401, 404, 413, 503)


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
        app.state.directory = CarrierDirectory(
            app.state.secret_box, app.state.sessions, settings.directory_cache_seconds
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
    install_error_model(app)
    app.add_middleware(BodyLimitMiddleware, limits=BodyLimits.from_settings(settings))
    app.include_router(health.router)
    # Carriers' webhooks first: a request is matched against the routes in order, and a burst of webhooks spent a
    # fifth of its API time scanning the REST routes before them (bench.ingress profile).
    app.include_router(twilio_webhooks.router, responses=TWILIO_ERRORS)
    app.include_router(twilio_sms_webhooks.router, responses=TWILIO_ERRORS)
    app.include_router(twilio_amd_webhooks.router, responses=TWILIO_ERRORS)
    app.include_router(twilio_stream_webhooks.router, responses=TWILIO_ERRORS)
    app.include_router(livekit_webhooks.router, responses=LIVEKIT_ERRORS)
    for module in (
        spaces,
        api_keys,
        carrier_accounts,
        sip_trunks,
        phone_numbers,
        agents,
        conversations,
        calls,
        sms,
        recordings,
        assets,
        campaigns,
        do_not_call,
        flows,
    ):
        app.include_router(module.router, responses=REST_ERRORS)
    app.include_router(console.router)  # the page; its socket is served with the media streams
    for extension in extensions:
        app.include_router(extension.router)
    return app
