"""SMS threads and the worker roles: the API starts threads on the speech role's task queue; a thread started on
the platform's own queue (as every thread was before the roles were split) is still answered by a worker of both
roles (``telephony worker --role all``), so a single-worker setup upgrades without stranding its open threads."""

from __future__ import annotations

from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from models import sms as m
from models.task_queues import speech_task_queue
from tests.sms.conftest import SmsLine, new_line, new_sid, party
from tests.support.stack import eventually, running_stack, temporal_client
from tests.twilio_standin import TwilioStandIn
from workers.worker_role import WorkerRole
from workflows.sms_client import Thread
from workflows.sms_thread import SmsThreadWorkflow

HOURS = "We open at nine and close at five. Closed on Sundays."
QUESTION = "What are your opening hours?"


async def _answered(line: SmsLine, to: str) -> list[str]:
    async def probe() -> list[str] | None:
        return [x.body for x in line.carrier_messages(to)] or None

    return await eventually(probe, 30.0)


async def _queue_of(line: SmsLine, party: str) -> str:
    described = await temporal_client(line.platform).get_workflow_handle(line.thread_id(party)).describe()
    return described.raw_description.execution_config.task_queue.name


async def test_threads_run_on_the_speech_queue_and_older_ones_on_the_platform_queue(
    temporal_env: WorkflowEnvironment, twilio_standin: TwilioStandIn, tmp_path: Path
) -> None:
    async with running_stack(
        temporal_env, tmp_path, roles=[WorkerRole.ALL], twilio_api_base_url=twilio_standin.url
    ) as platform:
        assert platform.app is not None
        twilio_standin.webhook_transport = httpx.ASGITransport(app=platform.app)
        line = await new_line(platform, twilio_standin)
        queue = platform.settings.task_queue

        newer, older = party(), party()
        await line.text_in(newer, QUESTION)  # the webhook: signal-with-start through SmsClient
        assert await _answered(line, newer) == [HOURS]
        assert await _queue_of(line, newer) == speech_task_queue(queue)

        thread = Thread(line.space.id, line.number_id, line.number, older)
        handle = await temporal_client(platform).start_workflow(
            SmsThreadWorkflow.run,
            thread.start(),
            id=thread.workflow_id,
            task_queue=queue,  # where the API started threads before the split
        )
        await handle.signal(SmsThreadWorkflow.inbound_message, m.InboundSms(new_sid(), QUESTION))
        assert await _answered(line, older) == [HOURS]
        assert await _queue_of(line, older) == queue
    twilio_standin.clear_failures()
