"""Crash test: the worker is a real ``telephony worker`` process, killed with SIGKILL while the agent's reply is
with the carrier (the carrier took the message, its answer had not come back). A new worker process finishes the
send: the carrier has the reply exactly once, and our message row carries its SID."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from api.temporal import TemporalGateway
from models.settings import Settings
from tests.conftest import SECRET_KEY, make_platform, serve_api
from tests.sms.conftest import PUBLIC, new_line, party
from tests.support.stack import eventually
from tests.twilio_standin import TwilioStandIn
from tests.workflows.test_call_crash import WorkerProcess
from workflows.sms_thread import SmsThreadWorkflow


@pytest.fixture
def sms_workers() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:  # whatever happened, no worker process outlives the test
        worker.close()
        print(f"--- {worker.log.name} (exit {worker.process.returncode})\n{worker.output()}")  # shown on failure


@pytest.mark.slow
async def test_worker_killed_mid_reply_sends_the_reply_once(
    temporal_env: WorkflowEnvironment, twilio_standin: TwilioStandIn, tmp_path: Path, sms_workers: list[WorkerProcess]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'telephony.db'}"
    queue = f"sms-crash-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=url,
        secret_keys=SECRET_KEY,
        task_queue=queue,
        public_url=PUBLIC,
        twilio_api_base_url=twilio_standin.url,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHONY_")}
    env.update(
        TELEPHONY_DATABASE_URL=url,
        TELEPHONY_SECRET_KEYS=SECRET_KEY,
        TELEPHONY_TEMPORAL_ADDRESS=temporal_env.client.service_client.config.target_host,
        TELEPHONY_TEMPORAL_NAMESPACE=temporal_env.client.namespace,
        TELEPHONY_TASK_QUEUE=queue,
        TELEPHONY_DATA_DIR=str(tmp_path / "data"),
        TELEPHONY_PUBLIC_URL=PUBLIC,
        TELEPHONY_TWILIO_API_BASE_URL=twilio_standin.url,
        PYTHONUNBUFFERED="1",
    )
    platform = await make_platform(settings)
    try:
        async with serve_api(platform, TemporalGateway(settings, temporal_env.client)) as served:
            assert served.app is not None
            twilio_standin.webhook_transport = httpx.ASGITransport(app=served.app)
            line = await new_line(served, twilio_standin)
            first = WorkerProcess.start(env, tmp_path, "worker-1")
            sms_workers.append(first)
            await first.wait_polling()

            caller = party()
            twilio_standin.delays["create_message"] = 30.0  # the carrier takes the reply; its answer is held back
            _, response = await line.text_in(caller, "What are your opening hours?")
            assert response.status_code == 200

            async def reply_at_carrier() -> bool:
                return len(line.carrier_messages(caller)) == 1

            await eventually(reply_at_carrier, within=60.0)
            first.kill9()
            del twilio_standin.delays["create_message"]

            second = WorkerProcess.start(env, tmp_path, "worker-2")
            sms_workers.append(second)
            await second.wait_polling()

            async def reply_recorded() -> str | None:
                rows = [r for r in await line.rows() if r.direction == "outbound"]
                return rows[0].carrier_message_sid if rows else None

            sid = await eventually(reply_recorded, within=90.0)
            await asyncio.sleep(1.0)
            sent = line.carrier_messages(caller)
            assert [x.sid for x in sent] == [sid]  # exactly one carrier message, and it is ours
            posts = [r for r in twilio_standin.requests_for("create_message") if r.form.get("To") == caller]
            assert len(posts) == 1
            lookups = [r for r in twilio_standin.requests_for("list_messages") if r.query.get("To") == caller]
            assert lookups, "the retried send looked the message up instead of posting again"
            rows = await line.rows()
            assert [r.role.value for r in rows] == ["caller", "agent"]

            handle = served.app.state.temporal._client.get_workflow_handle(line.thread_id(caller))
            await Replayer(workflows=[SmsThreadWorkflow]).replay_workflow(await handle.fetch_history())
            assert second.stop() == 0, second.output()
    finally:
        twilio_standin.delays.clear()
