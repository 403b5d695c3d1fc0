"""Crash tests: the worker is a real ``telephony worker`` process, killed with SIGKILL
- while the agent's reply is with the carrier (the carrier took the message, its answer had not come back): a new
  worker process finishes the send, the carrier has the reply exactly once and our message row carries its SID;
- while a burst queued on three threads of one number leaves at the number's pace: the rest leave after the
  restart, each once, in order, and the number's pace holds across the restart."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from api.temporal import TemporalGateway
from models import sms_pacing as p
from models.settings import Settings
from tests.conftest import SECRET_KEY, Platform, make_platform, serve_api
from tests.sms.conftest import PUBLIC, SmsLine, new_line, party
from tests.sms.pacing import over_pace
from tests.support.stack import eventually
from tests.twilio_standin import TwilioStandIn
from tests.workflows.test_call_crash import WorkerProcess
from workflows.sms_pacer import SmsPacerWorkflow
from workflows.sms_thread import SmsThreadWorkflow


@pytest.fixture
def sms_workers() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:  # whatever happened, no worker process outlives the test
        worker.close()
        print(f"--- {worker.log.name} (exit {worker.process.returncode})\n{worker.output()}")  # shown on failure


@dataclass
class CrashStack:
    platform: Platform
    line: SmsLine
    env: dict[str, str]
    tmp_path: Path
    workers: list[WorkerProcess]

    async def worker(self, name: str) -> WorkerProcess:
        worker = WorkerProcess.start(self.env, self.tmp_path, name)
        self.workers.append(worker)
        await worker.wait_polling()
        return worker

    def handle(self, party: str) -> Any:
        return self.handle_of(self.line.thread_id(party))

    def handle_of(self, workflow_id: str) -> Any:
        assert self.platform.app is not None
        return self.platform.app.state.temporal._client.get_workflow_handle(workflow_id)


@asynccontextmanager
async def crash_stack(
    temporal_env: WorkflowEnvironment,
    standin: TwilioStandIn,
    tmp_path: Path,
    workers: list[WorkerProcess],
    sms_settings: dict[str, Any] | None = None,
) -> AsyncIterator[CrashStack]:
    """The API in this process (no worker in it); workers are ``telephony worker`` processes."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'telephony.db'}"
    queue = f"sms-crash-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=url,
        secret_keys=SECRET_KEY,
        task_queue=queue,
        public_url=PUBLIC,
        twilio_api_base_url=standin.url,
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
        TELEPHONY_TWILIO_API_BASE_URL=standin.url,
        PYTHONUNBUFFERED="1",
    )
    platform = await make_platform(settings)
    try:
        async with serve_api(platform, TemporalGateway(settings, temporal_env.client)) as served:
            assert served.app is not None
            standin.webhook_transport = httpx.ASGITransport(app=served.app)
            line = await new_line(served, standin, sms_settings=sms_settings)
            yield CrashStack(served, line, env, tmp_path, workers)
    finally:
        standin.delays.clear()


@pytest.mark.slow
async def test_worker_killed_mid_reply_sends_the_reply_once(
    temporal_env: WorkflowEnvironment, twilio_standin: TwilioStandIn, tmp_path: Path, sms_workers: list[WorkerProcess]
) -> None:
    async with crash_stack(temporal_env, twilio_standin, tmp_path, sms_workers) as stack:
        line = stack.line
        first = await stack.worker("worker-1")
        caller = party()
        twilio_standin.delays["create_message"] = 30.0  # the carrier takes the reply; its answer is held back
        _, response = await line.text_in(caller, "What are your opening hours?")
        assert response.status_code == 200

        async def reply_at_carrier() -> bool:
            return len(line.carrier_messages(caller)) == 1

        await eventually(reply_at_carrier, within=60.0)
        first.kill9()
        del twilio_standin.delays["create_message"]
        second = await stack.worker("worker-2")

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
        assert [r.role.value for r in await line.rows()] == ["caller", "agent"]
        await Replayer(workflows=[SmsThreadWorkflow]).replay_workflow(await stack.handle(caller).fetch_history())
        assert second.stop() == 0, second.output()


@pytest.mark.slow
async def test_paced_burst_of_several_threads_survives_a_worker_kill(
    temporal_env: WorkflowEnvironment, twilio_standin: TwilioStandIn, tmp_path: Path, sms_workers: list[WorkerProcess]
) -> None:
    settings = {"messages_per_second": 2, "burst": 1}
    async with crash_stack(temporal_env, twilio_standin, tmp_path, sms_workers, settings) as stack:
        line = stack.line
        first = await stack.worker("worker-1")
        parties = [party() for _ in range(3)]
        bodies = {to: [f"notice {n:02d} for {k}" for n in range(6)] for k, to in enumerate(parties)}
        total = sum(len(b) for b in bodies.values())

        async def queue(to: str) -> None:
            for body in bodies[to]:
                assert (await line.send(to, body)).status_code == 202

        await asyncio.gather(*(queue(to) for to in parties))  # three threads of one number, queued together

        def sent() -> list[Any]:
            return [x for x in twilio_standin.messages.values() if x.from_ == line.number]

        async def some_sent() -> bool:
            return len(sent()) >= 4

        await eventually(some_sent, within=30.0)
        first.kill9()
        before = len(sent())
        assert before < total  # the kill came mid-burst
        second = await stack.worker("worker-2")

        async def all_sent() -> bool:
            return len(sent()) >= total

        await eventually(all_sent, within=120.0)
        await asyncio.sleep(1.5)
        for to in parties:  # each once, in its thread's order
            assert [x.body for x in line.carrier_messages(to)] == bodies[to]
        assert len(sent()) == total
        # One pace for the number, before, across and after the restart: slots granted before the kill that passed
        # while no worker ran were asked for again, not used together when the new worker came.
        times = [x.date_created for x in sent()]
        assert over_pace(times, rate=2.0, burst=1, slack=2) == [], sorted(times)  # slack: a slot is valid 1 s
        rows = [r for r in await line.rows() if r.direction == "outbound"]
        assert sorted(r.carrier_message_sid or "" for r in rows) == sorted(x.sid for x in sent())
        for to in parties:
            await Replayer(workflows=[SmsThreadWorkflow]).replay_workflow(await stack.handle(to).fetch_history())
        pacer = p.PacerKey(line.space.id, line.number).workflow_id
        history = await stack.handle_of(pacer).fetch_history()
        await Replayer(workflows=[SmsPacerWorkflow]).replay_workflow(history)
        assert second.stop() == 0, second.output()
