"""Fixtures for call workflow tests: a migrated SQLite database, the LiveKit stand-in, a real Temporal dev
server and a time-skipping test server, each with an in-process worker running the real activities."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from livekit import api as lk
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from activities.calls import CallRecordActivities
from activities.livekit_rooms import LiveKitRoomActivities
from activities.recordings import RecordingActivities
from models.call_contract import call_workflow_id
from models.calls import (
    CALL_ID_REUSE_POLICY,
    CALL_WORKFLOW,
    CallStateView,
    CarrierStatus,
    ConnectedEvent,
    StartCall,
)
from models.db import create_engine, migrate, session_factory
from models.enums import CallDirection, MediaMode, RecordingPolicy, RouteType
from models.secret_box import SecretBox
from models.settings import Settings
from models.tables import Agent, PhoneNumber, SipTrunk, Space, new_id
from tests.conftest import unique_e164
from tests.livekit_standin import LiveKitStandIn
from tests.support.temporal import start_dev_server, time_skipping_server
from voice.runtime import VoiceRuntime
from workflows.call_client import CallClient
from workflows.calls import CallWorkflow
from workflows.sandbox import workflow_runner

AGENT_NAME = "test-agent"


@dataclass
class Line:
    """A space with an agent and a LiveKit-mode number routed to it."""

    space_id: str
    agent_id: str
    number_id: str
    e164: str
    outbound_trunk_id: str | None = None


@dataclass
class CallHarness:
    client: Client
    task_queue: str
    sessions: async_sessionmaker[AsyncSession]
    livekit: LiveKitStandIn
    lk_api: lk.LiveKitAPI

    def voice_runtime(self, *, secret_box: SecretBox | None) -> VoiceRuntime:
        """What the voice transports share, on this harness's database and Temporal."""
        box = secret_box or SecretBox([Fernet.generate_key().decode()])
        return VoiceRuntime(Settings(), self.sessions, CallClient(self.client, self.task_queue), box)

    async def new_line(self, *, enabled: bool = True, call_settings: dict[str, int] | None = None) -> Line:
        async with self.sessions() as session:
            space = Space(name="calls", call_settings=call_settings or {})
            session.add(space)
            await session.flush()
            agent = Agent(space_id=space.id, name="receptionist")
            session.add(agent)
            await session.flush()
            number = PhoneNumber(
                space_id=space.id,
                e164=unique_e164(),
                route_type=RouteType.AGENT,
                agent_id=agent.id,
                media_mode=MediaMode.LIVEKIT,
                recording_policy=RecordingPolicy.OFF,
                enabled=enabled,
            )
            session.add(number)
            await session.commit()
            return Line(space.id, agent.id, number.id, number.e164)

    async def with_trunk(self, line: Line) -> Line:
        """Give the line's number a SIP trunk provisioned in the stand-in (for dialing out)."""
        created = await self.lk_api.sip.create_outbound_trunk(
            lk.CreateSIPOutboundTrunkRequest(
                trunk=lk.SIPOutboundTrunkInfo(name="t", address="sip.example.com", numbers=[line.e164])
            )
        )
        async with self.sessions() as session:
            trunk = SipTrunk(
                space_id=line.space_id,
                name="trunk",
                sip_address="sip.example.com",
                transport="udp",
                livekit_outbound_trunk_id=created.sip_trunk_id,
            )
            session.add(trunk)
            await session.flush()
            number = await session.get(PhoneNumber, line.number_id)
            assert number is not None
            number.sip_trunk_id = trunk.id
            await session.commit()
        line.outbound_trunk_id = created.sip_trunk_id
        return line

    def inbound(self, line: Line, *, caller: str | None = None, **kwargs: Any) -> StartCall:
        sid = "CA" + uuid.uuid4().hex
        return StartCall(
            call_id=new_id("calls"),
            workflow_id=call_workflow_id(line.space_id, sid),
            direction=CallDirection.INBOUND,
            from_number=caller or unique_e164(),
            to_number=line.e164,
            carrier_call_id=sid,
            space_id=line.space_id,
            media_mode=MediaMode.LIVEKIT,
            room_name=f"room-{sid}",
            **kwargs,
        )

    async def start(self, start: StartCall, **kwargs: Any) -> WorkflowHandle[Any, CallStateView]:
        return await self.client.start_workflow(
            CALL_WORKFLOW,
            start,
            id=start.workflow_id,
            task_queue=self.task_queue,
            result_type=CallStateView,
            id_reuse_policy=CALL_ID_REUSE_POLICY,
            **kwargs,
        )

    async def start_with(
        self, start: StartCall, first: ConnectedEvent | CarrierStatus
    ) -> WorkflowHandle[CallWorkflow, CallStateView] | None:
        """Start through the typed client, as webhooks do (signal-with-start); None when the call is over."""
        call = await CallClient(self.client, self.task_queue).start(start, first)
        return call.handle if call is not None else None


async def state_of(handle: WorkflowHandle[Any, Any]) -> CallStateView:
    return await handle.query(CallWorkflow.get_state)


async def wait_for(handle: WorkflowHandle[Any, Any], predicate: Any, within: float = 10.0) -> CallStateView:
    """Poll ``get_state`` until ``predicate(view)`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        view = await state_of(handle)
        if predicate(view):
            return view
        if loop.time() > deadline:
            raise AssertionError(f"call never reached the expected state: {view}")
        await asyncio.sleep(0.05)


@pytest.fixture(scope="session")
async def call_db(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    path: Path = tmp_path_factory.mktemp("calls") / "calls.db"
    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(migrate, url)
    engine = create_engine(url)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture(scope="session")
async def call_livekit() -> AsyncIterator[tuple[LiveKitStandIn, lk.LiveKitAPI]]:
    async with LiveKitStandIn() as standin:
        api = lk.LiveKitAPI(standin.url, standin.api_key, standin.api_secret)
        try:
            yield standin, api
        finally:
            await api.aclose()


def _worker(client: Client, task_queue: str, sessions: Any, api: lk.LiveKitAPI) -> Worker:
    records = CallRecordActivities(sessions)
    rooms = LiveKitRoomActivities(api, AGENT_NAME)
    recordings = RecordingActivities(api, Settings())  # egress of numbers that record (off unless a test sets it)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[CallWorkflow],
        workflow_runner=workflow_runner(),
        activities=[
            records.route_call,
            records.open_call,
            records.record_call_state,
            rooms.create_room,
            rooms.dispatch_agent,
            rooms.set_hold,
            rooms.transfer_participant,
            rooms.dial_participant,
            rooms.send_dtmf,
            rooms.remove_participant,
            rooms.delete_room,
            recordings.start_recording,
            recordings.stop_recording,
        ],
    )


@pytest.fixture(scope="session")
async def calls(
    call_db: async_sessionmaker[AsyncSession], call_livekit: tuple[LiveKitStandIn, lk.LiveKitAPI]
) -> AsyncIterator[CallHarness]:
    """A real Temporal dev server (search attributes, visibility) with a worker."""
    env = await start_dev_server()
    try:
        standin, api = call_livekit
        async with _worker(env.client, "calls", call_db, api):
            yield CallHarness(env.client, "calls", call_db, standin, api)
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
async def skipping_calls(
    call_db: async_sessionmaker[AsyncSession], call_livekit: tuple[LiveKitStandIn, lk.LiveKitAPI]
) -> AsyncIterator[CallHarness]:
    """The time-skipping test server (timers) with the search attributes registered and a worker."""
    async with time_skipping_server() as env:
        standin, api = call_livekit
        async with _worker(env.client, "calls-skipping", call_db, api):
            yield CallHarness(env.client, "calls-skipping", call_db, standin, api)
