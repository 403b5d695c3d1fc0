"""The clients both worker roles build from settings (database, secret box, object store, HTTP, carrier accounts,
LiveKit), opened at start-up and closed on exit; each role builds its activities over them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from livekit import api as lk
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.carrier_clients import CarrierClients
from models.db import create_engine, session_factory
from models.secret_box import SecretBox
from models.settings import Settings
from storage import BlobStore, build_store


@dataclass
class WorkerClients:
    sessions: async_sessionmaker[AsyncSession]
    box: SecretBox
    store: BlobStore
    http: httpx.AsyncClient
    carriers: CarrierClients
    livekit: lk.LiveKitAPI | None


@asynccontextmanager
async def worker_clients(settings: Settings) -> AsyncIterator[WorkerClients]:
    engine = create_engine(settings.resolved_database_url)
    sessions = session_factory(engine)
    box = SecretBox.from_setting(
        settings.secret_keys.get_secret_value() if settings.secret_keys else None, settings.data_dir
    )
    livekit = None
    if settings.livekit_configured:
        assert settings.livekit_api_secret is not None
        livekit = lk.LiveKitAPI(
            settings.livekit_url, settings.livekit_api_key, settings.livekit_api_secret.get_secret_value()
        )
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as http:
        try:
            yield WorkerClients(
                sessions, box, build_store(settings), http, CarrierClients(sessions, box, http, settings), livekit
            )
        finally:
            if livekit is not None:
                await livekit.aclose()
            await engine.dispose()
