"""Crash test: the worker is a real ``telephony worker`` process, killed with SIGKILL while a flow's call waits
in a gather. The caller presses the key while no worker runs; a new worker process picks the call up at the same
step (the menu is not said again) and the flow goes on to hand the caller to the agent."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from temporalio.testing import WorkflowEnvironment

from api.temporal import TemporalGateway
from models.settings import Settings
from tests.conftest import SECRET_KEY, make_platform, serve_api
from tests.support.flow_line import HOURS, flow_line
from tests.support.stack import eventually, serve_http
from tests.twilio_standin import TwilioStandIn
from tests.workflows.test_call_crash import WorkerProcess
from voice.media_stream.extension import MediaStreamExtension
from voice.speech.audio import int16_to_float, resample_int16
from voice.speech.whisper_engine import get_whisper_engine

MENU: dict[str, Any] = {
    "name": "menu",
    "steps": [
        {
            "id": "menu",
            "type": "gather",
            "prompt": "Press 1 for sales.",
            "variable": "choice",
            "choices": ["1"],
            "timeout_seconds": 60,
            "retries": 0,
            "on_no_input": "bye",
        },
        {"id": "sales", "type": "set", "values": {"team": "sales"}, "next": "assistant"},
        {"id": "assistant", "type": "agent", "agent_id": "{agent_id}"},
        {"id": "bye", "type": "hangup"},
    ],
}
AGENT = {
    "name": "front desk",
    "greeting": "Hello, this is the {team} team.",
    "knowledge_base": [{"title": "Opening hours", "content": HOURS}],
}


def _heard(pcm8k: np.ndarray) -> str:
    return get_whisper_engine().transcribe(int16_to_float(resample_int16(pcm8k, 8000, 16000))).text.lower()


@pytest.mark.slow
async def test_kill_9_worker_mid_gather_resumes_at_the_same_step(
    temporal_env: WorkflowEnvironment, twilio_standin: TwilioStandIn, tmp_path: Path
) -> None:
    queue = f"flow-crash-{uuid.uuid4().hex[:8]}"
    cwd = tmp_path / "workers"  # no folder named storage/ in a subprocess's cwd: it would shadow the package
    cwd.mkdir()
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'telephony.db'}",
        secret_keys=SECRET_KEY,
        task_queue=queue,
        public_url="https://telephony.example.com",
        twilio_api_base_url=twilio_standin.url,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHONY_")}
    env.update(
        TELEPHONY_DATABASE_URL=settings.resolved_database_url,
        TELEPHONY_SECRET_KEYS=SECRET_KEY,
        TELEPHONY_TEMPORAL_ADDRESS=temporal_env.client.service_client.config.target_host,
        TELEPHONY_TEMPORAL_NAMESPACE=temporal_env.client.namespace,
        TELEPHONY_TASK_QUEUE=queue,
        TELEPHONY_DATA_DIR=str(tmp_path / "data"),
        TELEPHONY_PUBLIC_URL="https://telephony.example.com",
        TELEPHONY_TWILIO_API_BASE_URL=twilio_standin.url,
        PYTHONUNBUFFERED="1",
    )
    platform = await make_platform(settings)
    workers: list[WorkerProcess] = []
    try:
        first = WorkerProcess.start(env, cwd, "worker-1")
        workers.append(first)
        gateway = TemporalGateway(settings, temporal_env.client)
        async with serve_api(platform, gateway, [MediaStreamExtension()]) as stack:
            assert stack.app is not None
            await stack.app.state.voice.warm_up()
            await first.wait_polling()
            async with serve_http(stack.app) as base_url:
                line = await flow_line(stack, twilio_standin, base_url, MENU, AGENT)
                parameters = await line.ring()
                workflow_id = parameters["workflow_id"]
                async with line.stream(parameters) as phone:
                    await phone.start()
                    menu = await phone.next_reply()
                    assert "sales" in await asyncio.to_thread(_heard, menu.pcm8k())

                    first.kill9()  # the call waits in the gather, its timer running on the server
                    await phone.dtmf("1")  # pressed while no worker runs
                    second = WorkerProcess.start(env, cwd, "worker-2")
                    workers.append(second)
                    await second.wait_polling()
                    greeting = await phone.next_reply(within=90)
                    assert "sales team" in await asyncio.to_thread(_heard, greeting.pcm8k())
                    assert len(phone.segments) == 2  # the menu was said once: the call resumed in the gather

                    view = await line.state(workflow_id)
                    steps = [e.detail or "" for e in view.timeline if e.event == "flow_step"]
                    assert [s.split(":")[0] for s in steps] == ["menu (gather)", "sales (set)", "assistant (agent)"]
                    assert steps[0].startswith("menu (gather): input '1'")
                    assert [e.event for e in view.timeline].count("flow_started") == 1
                    await phone.stop()

                async def ended() -> bool:
                    return (await line.state(workflow_id)).state.value == "ended"

                await eventually(ended, within=60)
        assert second.stop() == 0, second.output()
    finally:
        for worker in workers:
            worker.close()
            print(f"--- {worker.log.name} (exit {worker.process.returncode})\n{worker.output()}")
