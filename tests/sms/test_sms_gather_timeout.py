"""A flow waiting at a gather on an SMS thread, on Temporal's time-skipping test server: the thread does not idle out
while the gather waits (it used to complete, and the reply then started the flow over); a reply after the idle
window continues the flow from the gather; no reply within the gather's own timeout takes its no-input path, as
Twilio Studio's Send & Wait For Reply does.

The real ``SmsThreadWorkflow`` and ``SmsFlow`` run on the test's worker; the activities around them (database,
carrier, pacer, flow loader) are test-side implementations by the same names that record what they were asked
and answer at once, so that no running activity holds the server's clock back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

import models.sms_pacing as p
from models import sms as m
from models.flow_calls import LoadedFlow, LoadFlowInput
from models.flows import FlowDocument
from tests.support.stack import eventually
from tests.support.temporal import time_skipping_server
from workflows.sandbox import workflow_runner
from workflows.sms_thread import SmsThreadWorkflow

HISTORIES = Path(__file__).parent / "histories"
IDLE_SECONDS = 60
REPLY_TIMEOUT = 3600
MENU = "Reply 1 for sales."
THANKS = "Sales will text you back."
NOBODY = "No reply from you: goodbye."
MENU_STEP = {"id": "menu", "type": "gather", "prompt": MENU, "variable": "choice", "choices": ["1"], "retries": 0}
FLOW = FlowDocument.model_validate(
    {
        "name": "texts",
        "steps": [
            MENU_STEP | {"reply_timeout_seconds": REPLY_TIMEOUT, "on_no_input": "nobody", "next": "thanks"},
            {"id": "thanks", "type": "say", "text": THANKS, "next": "end"},
            {"id": "end", "type": "hangup"},
            {"id": "nobody", "type": "say", "text": NOBODY, "next": "end"},
        ],
    }
)


@dataclass
class Around:
    """The thread's activities: the number routes to the flow above, with a short idle window."""

    sent: list[str] = field(default_factory=list)
    paused: int = 0
    loaded: int = 0

    @activity.defn(name="route_sms")
    async def route_sms(self, request: m.RouteSmsInput) -> m.SmsRoute:
        return m.SmsRoute(True, messages_per_second=10.0, burst=10, idle_timeout_seconds=IDLE_SECONDS, flow_id="fl_1")

    @activity.defn(name="open_thread")
    async def open_thread(self, request: m.OpenThreadInput) -> m.OpenedThread:
        return m.OpenedThread("cv_1", resumed=self.paused > 0)

    @activity.defn(name="pause_thread")
    async def pause_thread(self, request: m.PauseThreadInput) -> m.ThreadPaused:
        self.paused += 1
        return m.ThreadPaused(True)

    @activity.defn(name="store_message")
    async def store_message(self, request: m.StoreMessageInput) -> m.StoredMessage:
        return m.StoredMessage(request.message_id, duplicate=False)

    @activity.defn(name="record_delivery")
    async def record_delivery(self, request: m.RecordDeliveryInput) -> m.DeliveryRecorded:
        return m.DeliveryRecorded(True)

    @activity.defn(name="send_to_carrier")
    async def send_to_carrier(self, request: m.SendCarrierInput) -> m.CarrierAccepted:
        self.sent.append(request.body)
        return m.CarrierAccepted(f"SM{uuid.uuid4().hex}", m.DeliveryStatus.SENT)

    @activity.defn(name="reserve_send_slot")
    async def reserve_send_slot(self, request: p.ReserveSlotInput) -> p.SlotGrant:
        now = datetime.now(UTC) - timedelta(days=3650)  # long open: the server's clock runs ahead of this one
        return p.SlotGrant("t", now, now + timedelta(days=36500), 0)

    @activity.defn(name="load_flow")
    async def load_flow(self, request: LoadFlowInput) -> LoadedFlow:
        self.loaded += 1
        return LoadedFlow(request.flow_id, 1, FLOW.model_dump_json(exclude_none=True))


Thread = WorkflowHandle[SmsThreadWorkflow, m.SmsThreadView]


@dataclass
class Harness:
    env: WorkflowEnvironment
    client: Client
    queue: str
    around: Around

    async def text_in(
        self, body: str, party: str = "+14155550123"
    ) -> WorkflowHandle[SmsThreadWorkflow, m.SmsThreadView]:
        start = m.StartSmsThread("sp_1", "pn_1", "+14155550100", party)
        handle = await self.client.start_workflow(
            SmsThreadWorkflow.run,
            start,
            id=m.sms_thread_workflow_id("sp_1", "+14155550100", party),
            task_queue=self.queue,
        )
        # The time-skipping server has no id-conflict policy, so not SmsClient's signal-with-start: start, then text.
        await handle.signal(SmsThreadWorkflow.inbound_message, m.InboundSms(f"SM{uuid.uuid4().hex}", body))
        return handle

    async def sent(self, count: int) -> list[str]:
        return await eventually(lambda: _at_least(self.around.sent, count), 20.0)


async def _at_least(sent: list[str], count: int) -> list[str] | None:
    return list(sent) if len(sent) >= count else None


@asynccontextmanager
async def skipping_sms() -> AsyncIterator[Harness]:
    """The time-skipping test server with the search attributes registered, and a worker for the thread."""
    async with time_skipping_server() as env:
        around, queue = Around(), f"sms-skipping-{uuid.uuid4().hex[:6]}"
        activities: list[Callable[..., Any]] = [
            around.route_sms, around.open_thread, around.pause_thread, around.store_message, around.record_delivery,
            around.send_to_carrier, around.reserve_send_slot, around.load_flow,
        ]  # fmt: skip
        async with Worker(
            env.client,
            task_queue=queue,
            workflows=[SmsThreadWorkflow],
            workflow_runner=workflow_runner(),
            activities=activities,
        ):
            yield Harness(env, env.client, queue, around)


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    async with skipping_sms() as running:
        yield running


async def test_a_reply_after_the_idle_window_continues_the_flow_at_its_gather(harness: Harness) -> None:
    handle = await harness.text_in("hi")
    assert await harness.sent(1) == [MENU]
    await harness.env.sleep(10 * IDLE_SECONDS)  # skipped: well past the idle window, within the reply timeout
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING  # the gather keeps the thread open
    assert harness.around.paused == 0
    await handle.signal(SmsThreadWorkflow.inbound_message, m.InboundSms("SM-reply", "1"))
    assert await harness.sent(2) == [MENU, THANKS]  # from the gather on, not the flow over again
    view = await handle.result()  # the flow ended: the thread idles out now
    assert harness.around.sent == [MENU, THANKS] and harness.around.paused == 1 and harness.around.loaded == 1
    assert "menu (gather): input '1', input -> thanks" in view.flow_steps, view.flow_steps
    assert view.state == m.SmsThreadState.PAUSED
    await _replays(await handle.fetch_history())


async def test_no_reply_within_the_gather_timeout_takes_its_no_input_path(harness: Harness) -> None:
    handle = await harness.text_in("hi")
    assert await harness.sent(1) == [MENU]
    view = await handle.result()  # the server skips the reply timeout, then the idle window
    assert harness.around.sent == [MENU, NOBODY] and harness.around.paused == 1
    assert "menu (gather): no_input '', no input -> nobody" in view.flow_steps, view.flow_steps
    asked, gave_up = (x.at for x in view.messages if x.direction is m.SmsDirection.OUTBOUND)
    assert REPLY_TIMEOUT <= (gave_up - asked).total_seconds() < REPLY_TIMEOUT + 5  # its own timeout, not the idle
    await _replays(await handle.fetch_history())


async def test_a_thread_that_idled_out_at_a_gather_before_the_patch_still_replays() -> None:
    """Recorded with the code before ``GATHER_REPLY_TIMEOUT``: the thread idled out with the gather pending."""
    history = WorkflowHistory.from_json(
        "gather-idled-out", (HISTORIES / "gather_idled_out_before_patch.json").read_text()
    )
    await _replays(history)


async def _replays(history: WorkflowHistory) -> None:
    replayer = Replayer(workflows=[SmsThreadWorkflow], workflow_runner=workflow_runner())
    await replayer.replay_workflow(history)  # raises on any non-determinism
