"""The platform wired end to end for a test: database, in-process Temporal worker, API over ASGI."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from temporalio.testing import WorkflowEnvironment

from api.app import AppExtension
from api.temporal import TemporalGateway
from models.settings import Settings
from tests.conftest import SECRET_KEY, Platform, make_platform, serve_api
from tests.livekit_standin import LiveKitStandIn
from workers.worker import activity_clients, build_worker
from workers.worker_role import WorkerRole

T = TypeVar("T")


@asynccontextmanager
async def running_stack(
    env: WorkflowEnvironment,
    tmp_path: Path,
    *,
    extensions: Sequence[AppExtension] = (),
    roles: Sequence[WorkerRole] = (WorkerRole.CALLS, WorkerRole.SPEECH),
    **overrides: Any,
) -> AsyncIterator[Platform]:
    """SQLite platform whose workers poll their own task queues on the shared dev server: by default the call role
    and the speech role as two workers with their own clients, as ``telephony dev`` runs them in two processes."""
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'telephony.db'}",
        secret_keys=SECRET_KEY,
        task_queue=f"test-{uuid.uuid4().hex[:8]}",
        public_url="https://telephony.example.com",
        **overrides,
    )
    platform = await make_platform(settings)
    async with AsyncExitStack() as workers:
        for role in roles:
            clients = await workers.enter_async_context(activity_clients(settings, env.client, role))
            await workers.enter_async_context(build_worker(env.client, settings, clients))
        async with serve_api(platform, TemporalGateway(settings, env.client), extensions) as served:
            yield served


def livekit_settings(standin: LiveKitStandIn) -> dict[str, Any]:
    """The settings that point a platform at the LiveKit stand-in (``running_stack(..., **livekit_settings(s))``)."""
    return {"livekit_url": standin.url, "livekit_api_key": standin.api_key, "livekit_api_secret": standin.api_secret}


async def eventually(probe: Callable[[], Awaitable[T | None]], within: float = 15.0) -> T:
    """Poll ``probe`` until it returns something truthy (work done by a workflow in the background)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await probe()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def serve_http(app: Any) -> AsyncIterator[str]:
    """Serve an already started app on a real loopback port (for peers that speak plain HTTP to it)."""
    import uvicorn

    from tests.support.postgres import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def temporal_client(platform: Platform) -> Any:
    """The Temporal client the platform's API uses."""
    assert platform.app is not None
    return platform.app.state.temporal._client
