"""Campaign fixtures: a time-skipping Temporal server with a worker running campaigns and LiveKit-carried calls
(windows and backoff in seconds of test time), and helpers to write a campaign and read its rows."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from livekit import api as lk
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.calls import CallRecordActivities
from activities.campaigns import CampaignActivities, campaign_activities
from activities.livekit_rooms import LiveKitRoomActivities
from api.campaign_store import check_agent, create_campaign, from_numbers, start_input
from models.calls import AmdOptions
from models.campaign_contacts import ContactIn, zone_of_number
from models.campaigns import CampaignLimits
from models.tables import Call, CampaignContact
from tests.api.resources import twilio_number
from tests.conftest import Platform, SpaceKeys
from tests.livekit_standin import LiveKitStandIn
from tests.support.stack import running_stack, temporal_client
from tests.support.temporal import time_skipping_server
from tests.twilio_standin import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TwilioStandIn
from tests.workflows.conftest import AGENT_NAME, CallHarness, call_db, call_livekit
from workflows.call_client import CallClient
from workflows.calls import CallWorkflow
from workflows.campaign import CampaignWorkflow
from workflows.campaign_client import CampaignClient, CampaignRef
from workflows.sandbox import workflow_runner

__all__ = ["call_db", "call_livekit"]


def contact(e164: str, *, name: str | None = None, tz: str | None = None, **variables: str) -> ContactIn:
    return ContactIn(e164, tz or zone_of_number(e164, "UTC"), name, dict(variables))


def number_in(prefix: str, digits: int) -> str:
    """A fresh number under ``prefix`` (country and area), ``digits`` random digits after it."""
    return prefix + f"{uuid.uuid4().int % 10**digits:0{digits}d}"


async def start_campaign(
    sessions: async_sessionmaker[AsyncSession],
    campaigns: CampaignClient,
    *,
    space_id: str,
    e164s: list[str],
    contacts: list[ContactIn],
    limits: CampaignLimits,
    amd: AmdOptions | None = None,
    continue_after_dials: int = 500,
) -> CampaignRef:
    """Write the campaign and its contacts as the API does, then start its workflow."""
    async with sessions() as session:
        numbers = await from_numbers(session, space_id, e164s)
        agent_id = await check_agent(session, space_id, None, numbers)
        row = await create_campaign(
            session,
            space_id=space_id,
            name="test",
            agent_id=agent_id,
            numbers=numbers,
            limits=limits,
            amd=amd,
            contacts=contacts,
        )
    return await campaigns.start(start_input(row, continue_after_dials=continue_after_dials))


async def contact_rows(sessions: async_sessionmaker[AsyncSession], campaign_id: str) -> dict[str, CampaignContact]:
    async with sessions() as session:
        rows = await session.scalars(select(CampaignContact).where(CampaignContact.campaign_id == campaign_id))
        return {r.e164: r for r in rows}


async def calls_to(sessions: async_sessionmaker[AsyncSession], space_id: str, e164: str) -> list[Call]:
    async with sessions() as session:
        rows = await session.scalars(
            select(Call).where(Call.space_id == space_id, Call.to_number == e164).order_by(Call.created_at)
        )
        return list(rows)


def campaign_worker(
    client: Client, queue: str, sessions: async_sessionmaker[AsyncSession], api: lk.LiveKitAPI
) -> Worker:
    """The call worker of the workflow tests, with campaigns added."""
    records = CallRecordActivities(sessions)
    rooms = LiveKitRoomActivities(api, AGENT_NAME)
    campaigns = CampaignActivities(sessions, CallClient(client, queue))
    return Worker(
        client,
        task_queue=queue,
        workflows=[CallWorkflow, CampaignWorkflow],
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
            *campaign_activities(campaigns),
        ],
    )


@dataclass
class SkippingCampaigns:
    env: WorkflowEnvironment
    calls: CallHarness
    campaigns: CampaignClient


@pytest.fixture(scope="session")
async def skipping_campaigns(
    call_db: async_sessionmaker[AsyncSession], call_livekit: tuple[LiveKitStandIn, lk.LiveKitAPI]
) -> AsyncIterator[SkippingCampaigns]:
    """The time-skipping server; one worker runs campaigns, LiveKit-carried calls and their activities."""
    async with time_skipping_server() as env:
        standin, api = call_livekit
        queue = "campaigns-skipping"
        async with campaign_worker(env.client, queue, call_db, api):
            harness = CallHarness(env.client, queue, call_db, standin, api)
            yield SkippingCampaigns(env, harness, CampaignClient(env.client, queue))


@dataclass
class Line:
    stack: Platform
    space: SpaceKeys
    space_id: str
    e164: str
    campaigns: CampaignClient
    calls: CallClient


@pytest.fixture
async def line(
    temporal_env: WorkflowEnvironment, twilio_standin: TwilioStandIn, livekit_standin: LiveKitStandIn, tmp_path: Path
) -> AsyncIterator[Line]:
    async with running_stack(temporal_env, tmp_path, twilio_api_base_url=twilio_standin.url) as stack:
        assert stack.app is not None
        twilio_standin.webhook_transport = httpx.ASGITransport(app=stack.app)
        space = await stack.new_space()
        e164 = await twilio_number(
            stack.client, space, media_mode="stream", account_sid=TEST_ACCOUNT_SID, auth_token=TEST_AUTH_TOKEN
        )
        twilio_standin.add_incoming(TEST_ACCOUNT_SID, e164)
        client, queue = temporal_client(stack), stack.settings.task_queue
        yield Line(stack, space, space.id, e164, CampaignClient(client, queue), CallClient(client, queue))
