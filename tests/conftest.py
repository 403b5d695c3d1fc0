"""Shared fixtures: databases (SQLite and a real PostgreSQL), the API app over ASGI, a platform key."""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.app import AppExtension, create_app
from api.temporal import TemporalGateway
from models.credentials import generate_key
from models.db import create_engine, migrate, session_factory
from models.enums import Role
from models.settings import Settings
from models.tables import ApiKey
from tests.support.network_guard import offline
from tests.support.postgres import PostgresServer, start_postgres
from tests.support.temporal import start_dev_server

pytest_plugins = [
    "tests.livekit_standin.fixtures",
    "tests.twilio_standin.fixtures",
    "tests.support.s3",
]

# The suite runs the call role's workflows in Temporal's sandbox (production does not, for speed: Settings
# .workflow_sandbox): a non-deterministic call in workflow code fails its test at once. Worker processes started
# with a clean TELEPHONY_ environment (tests/workflows/test_call_crash.worker_env) run as production does.
os.environ.setdefault("TELEPHONY_WORKFLOW_SANDBOX", "true")

SECRET_KEY = Fernet.generate_key().decode()
_numbers = itertools.count(1000)


def unique_e164() -> str:
    """A fresh, possible US number for each call (numbers are unique across spaces)."""
    n = next(_numbers)
    return f"+1415{uuid.uuid4().int % 900 + 100:03d}{n % 10000:04d}"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="session", autouse=True)
def no_outbound_network() -> Iterator[list[str]]:
    """The whole suite runs offline: nothing may reach a model hub, a cloud API or any other host."""
    with offline() as attempts:
        yield attempts
    assert attempts == [], f"the suite attempted outbound network access: {attempts}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer | None]:
    server = start_postgres()
    yield server
    if server is not None:
        server.stop()


def new_database_url(backend: str, tmp_dir: Path, pg: PostgresServer | None) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_dir / f'{uuid.uuid4().hex}.db'}"
    if pg is None:
        pytest.skip("PostgreSQL binaries not installed (apt-get install postgresql): PostgreSQL run skipped")
    return pg.create_database(f"t_{uuid.uuid4().hex[:12]}")


@dataclass
class Platform:
    """A migrated database, settings pointing at it, a platform (super-admin) key, and the API over ASGI."""

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    admin_key: str
    http: httpx.AsyncClient | None = None
    app: FastAPI | None = None
    _spaces: list[str] = field(default_factory=list)

    @property
    def client(self) -> httpx.AsyncClient:
        assert self.http is not None, "use the api fixture"
        return self.http

    @property
    def admin(self) -> dict[str, str]:
        return bearer(self.admin_key)

    async def new_space(self, name: str = "space") -> SpaceKeys:
        response = await self.client.post("/v1/spaces", json={"name": name}, headers=self.admin)
        assert response.status_code == 201, response.text
        space_id = response.json()["id"]
        keys = {}
        for role in Role:
            created = await self.client.post(
                f"/v1/spaces/{space_id}/api-keys",
                json={"name": f"{role} key", "role": role},
                headers=self.admin,
            )
            assert created.status_code == 201, created.text
            keys[Role(role)] = created.json()["key"]
        return SpaceKeys(space_id, keys)


@dataclass
class SpaceKeys:
    id: str
    keys: dict[Role, str]

    def as_role(self, role: Role) -> dict[str, str]:
        return bearer(self.keys[role])

    @property
    def owner(self) -> dict[str, str]:
        return self.as_role(Role.OWNER)

    @property
    def admin(self) -> dict[str, str]:
        return self.as_role(Role.ADMIN)

    @property
    def viewer(self) -> dict[str, str]:
        return self.as_role(Role.VIEWER)

    def path(self, suffix: str = "") -> str:
        return f"/v1/spaces/{self.id}{suffix}"


async def make_platform(settings: Settings) -> Platform:
    await asyncio.to_thread(migrate, settings.resolved_database_url)
    engine = create_engine(settings.resolved_database_url)
    sessions = session_factory(engine)
    new = generate_key()
    async with sessions() as session:
        session.add(
            ApiKey(
                space_id=None,
                name="test platform",
                role=Role.OWNER,
                prefix=new.prefix,
                secret_hash=new.secret_hash,
            )
        )
        await session.commit()
    return Platform(settings=settings, sessions=sessions, admin_key=new.plaintext)


@asynccontextmanager
async def serve_api(
    platform: Platform, temporal: TemporalGateway | None = None, extensions: Sequence[AppExtension] = ()
) -> AsyncIterator[Platform]:
    app = create_app(platform.settings, temporal=temporal, extensions=extensions)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield Platform(platform.settings, platform.sessions, platform.admin_key, http=http, app=app)


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
async def platform(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server: PostgresServer | None,
) -> Platform:
    tmp_dir = tmp_path_factory.mktemp(f"db-{request.param}")
    url = new_database_url(request.param, tmp_dir, postgres_server)
    return await make_platform(Settings(data_dir=tmp_dir, database_url=url, secret_keys=SECRET_KEY))


@pytest.fixture(scope="session")
async def api(platform: Platform) -> AsyncIterator[Platform]:
    """The API app on both backends, LiveKit not configured, no Temporal needed."""
    async with serve_api(platform) as served:
        yield served


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """One real Temporal dev server for the session (tests use their own task queues)."""
    env = await start_dev_server()
    try:
        yield env
    finally:
        await env.shutdown()
