"""A flow's no-input timeouts on Temporal's time-skipping test server: the gather waits its full timeout (skipped,
not slept), says its no-input prompt, waits again, then takes ``on_no_input`` to the agent with what it gathered.

The call is a console (web) call whose socket is attached to it; the media process's activities (say a prompt,
start the agent) are the transport, so they are test-side implementations on the test's own worker that record
what they were asked and answer at once. Everything else is the real CallWorkflow, flow runner and database.
The socket's ``carry_media`` (which heartbeats for as long as a real socket lives) answers at once here, so no
running activity holds the server's clock back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from activities.calls import CallRecordActivities
from activities.flows import FlowActivities
from models import calls as c
from models.call_contract import web_call
from models.enums import CallState, EndReason
from models.flow_calls import FlowAgentStarted, PlayPrompt, PromptPlayed, StartFlowAgent
from models.flows import FlowDocument
from models.tables import Agent, Flow, FlowVersion, Space, new_id
from tests.workflows.conftest import CallHarness
from workflows.calls import CallWorkflow
from workflows.sandbox import workflow_runner

MENU_TIMEOUT = 8.0


@dataclass
class MediaSide:
    """The media process's side of the flow, as the workflow reaches it (activity names of FlowMediaActivities)."""

    prompts: list[str] = field(default_factory=list)
    agents: list[StartFlowAgent] = field(default_factory=list)

    @activity.defn(name="play_prompt")
    async def play_prompt(self, request: PlayPrompt) -> PromptPlayed:
        self.prompts.append(request.text)
        return PromptPlayed(interrupted=False, seconds=1.0)

    @activity.defn(name="carry_media")
    async def carry_media(self, request: c.CarryMediaInput) -> c.MediaCarried:
        return c.MediaCarried(request.stream_id, ended_by="closed")

    @activity.defn(name="start_agent")
    async def start_agent(self, request: StartFlowAgent) -> FlowAgentStarted:
        self.agents.append(request)
        return FlowAgentStarted(request.agent_id)


@dataclass
class FlowHarness:
    client: Client
    task_queue: str
    media_queue: str
    media: MediaSide
    space_id: str
    agent_id: str
    flow_id: str


async def _space_with_flow(sessions: async_sessionmaker[AsyncSession]) -> tuple[str, str, str]:
    async with sessions() as session:
        space = Space(name="flows", call_settings={"max_call_duration_seconds": 600})
        session.add(space)
        await session.flush()
        agent = Agent(space_id=space.id, name="receptionist")
        session.add(agent)
        await session.flush()
        document = FlowDocument.model_validate(
            {
                "name": "menu",
                "steps": [
                    {
                        "id": "menu",
                        "type": "gather",
                        "prompt": "Press 1 for sales.",
                        "variable": "choice",
                        "choices": ["1"],
                        "timeout_seconds": MENU_TIMEOUT,
                        "retries": 1,
                        "no_input_prompt": "Are you still there?",
                        "on_no_input": "assistant",
                    },
                    {"id": "bye", "type": "hangup"},
                    {"id": "assistant", "type": "agent", "agent_id": agent.id},
                ],
            }
        )
        flow = Flow(space_id=space.id, name="menu", version=1)
        session.add(flow)
        await session.flush()
        stored = document.model_dump(mode="json", exclude_none=True)
        session.add(FlowVersion(space_id=space.id, flow_id=flow.id, version=1, document=stored))
        await session.commit()
        return space.id, agent.id, flow.id


@pytest.fixture
async def flows(skipping_calls: CallHarness) -> AsyncIterator[FlowHarness]:
    sessions, client = skipping_calls.sessions, skipping_calls.client
    records, loader, media = CallRecordActivities(sessions), FlowActivities(sessions), MediaSide()
    queue = f"flows-skipping-{uuid.uuid4().hex[:6]}"
    calls = Worker(
        client,
        task_queue=queue,
        workflows=[CallWorkflow],
        workflow_runner=workflow_runner(),
        activities=[records.route_call, records.open_call, records.record_call_state, loader.load_flow],
    )
    transport = Worker(
        client, task_queue=f"{queue}-media", activities=[media.play_prompt, media.start_agent, media.carry_media]
    )
    space_id, agent_id, flow_id = await _space_with_flow(sessions)
    async with calls, transport:
        yield FlowHarness(client, queue, f"{queue}-media", media, space_id, agent_id, flow_id)


async def test_no_input_times_out_says_the_no_input_prompt_and_moves_on(flows: FlowHarness) -> None:
    start = web_call(
        call_id=new_id("calls"),
        space_id=flows.space_id,
        agent_id=None,
        phone_number_id=None,
        caller="web:test",
        to=f"flow:{flows.flow_id}",
        flow_id=flows.flow_id,
    )
    handle = await flows.client.start_workflow(
        CallWorkflow.run,
        start,
        id=start.workflow_id,
        task_queue=flows.task_queue,
        id_reuse_policy=c.CALL_ID_REUSE_POLICY,
    )
    attached = await handle.execute_update(CallWorkflow.attach_media, c.AttachMedia("socket-1", flows.media_queue))
    assert attached.flow and attached.agent_id == ""

    view: c.CallStateView = await handle.result()  # the server skips the timeouts, then the call's max duration
    assert (view.state, view.end_reason) == (CallState.ENDED, EndReason.MAX_DURATION)
    assert flows.media.prompts == ["Press 1 for sales.", "Are you still there?", "Press 1 for sales."]
    assert [(a.agent_id, a.variables) for a in flows.media.agents] == [(flows.agent_id, {"choice": ""})]

    steps = [e for e in view.timeline if e.event == "flow_step"]
    details = [e.detail or "" for e in steps]
    assert details[0] == "menu (gather): no_input '', retry", details
    assert details[1] == "menu (gather): no_input '', no input -> assistant", details
    assert details[2].startswith("assistant (agent): handed to agent"), details
    waited = (steps[1].at - steps[0].at).total_seconds()
    assert MENU_TIMEOUT <= waited < MENU_TIMEOUT + 2, waited  # a full timeout, skipped
    by_event = {e.event: e.at for e in view.timeline}
    assert (by_event["flow_active"] - by_event["ringing"]).total_seconds() < 5
    assert 2 * MENU_TIMEOUT <= (steps[1].at - by_event["flow_active"]).total_seconds() < 2 * MENU_TIMEOUT + 3
