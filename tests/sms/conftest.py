"""An SMS line end to end: the API over ASGI, an in-process worker on the real dev server, the Twilio stand-in
posting signed webhooks into the API and taking our Messages API calls."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from models import sms as m
from models.tables import Message, PhoneNumber, Space
from tests.api.resources import agent_body, create
from tests.conftest import Platform, SpaceKeys, unique_e164
from tests.support.stack import running_stack, temporal_client
from tests.twilio_standin import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, MessageRecord, TwilioStandIn
from workflows.sms_client import SmsClient

PUBLIC = "https://telephony.example.com"
KB = [{"title": "Opening hours", "content": "We open at nine and close at five. Closed on Sundays."}]


@dataclass
class SmsLine:
    platform: Platform
    standin: TwilioStandIn
    space: SpaceKeys
    number: str
    number_id: str
    account_sid: str

    @property
    def client(self) -> httpx.AsyncClient:
        return self.platform.client

    def sms(self) -> SmsClient:
        return SmsClient(temporal_client(self.platform), self.platform.settings.task_queue)

    def thread_id(self, party: str) -> str:
        return m.sms_thread_workflow_id(self.space.id, self.number, party)

    async def text_in(self, party: str, body: str, **kwargs: Any) -> tuple[MessageRecord, httpx.Response]:
        return await self.standin.incoming_sms(self.number, party, body, **kwargs)

    async def send(self, to: str, body: str, **extra: Any) -> httpx.Response:
        payload = {"from_number": self.number, "to_number": to, "body": body, **extra}
        return await self.client.post(self.space.path("/messages"), json=payload, headers=self.space.owner)

    def carrier_messages(self, to: str) -> list[MessageRecord]:
        """What we sent to ``to`` through the carrier, oldest first."""
        found = [x for x in self.standin.messages.values() if x.from_ == self.number and x.to == to]
        return sorted(found, key=lambda x: x.date_created)

    async def rows(self, party: str | None = None) -> list[Message]:
        async with self.platform.sessions() as session:
            stmt = select(Message).where(Message.space_id == self.space.id, Message.source == "sms")
            rows = list((await session.scalars(stmt.order_by(Message.created_at, Message.id))).all())
        return rows

    async def view(self, party: str) -> m.SmsThreadView:
        snapshot = await self.sms().snapshot(self.thread_id(party))
        assert snapshot is not None
        return snapshot.view


def party() -> str:
    return unique_e164()


async def new_line(
    platform: Platform,
    standin: TwilioStandIn,
    *,
    agent: bool = True,
    sms_settings: dict[str, Any] | None = None,
    account_sid: str = TEST_ACCOUNT_SID,
    auth_token: str = TEST_AUTH_TOKEN,
) -> SmsLine:
    space = await platform.new_space("sms")
    account = await create(
        platform.client,
        space,
        "carrier-accounts",
        {"name": "twilio", "account_sid": account_sid, "auth_token": auth_token},
    )
    e164 = unique_e164()
    number: dict[str, Any] = {"e164": e164, "carrier_account_id": account["id"], "sms_enabled": True}
    if agent:
        created = await create(platform.client, space, "agents", agent_body() | {"knowledge_base": KB})
        number["agent_id"] = created["id"]
    else:
        number |= {"route_type": "flow", "flow_id": "flow-inbox"}
    made = await create(platform.client, space, "phone-numbers", number)
    standin.add_incoming(account_sid, e164, SmsUrl=f"{PUBLIC}{m.WEBHOOK_SMS_PATH}")
    if sms_settings:
        async with platform.sessions() as session:
            row = await session.get(Space, space.id)
            assert row is not None
            row.call_settings = {**(row.call_settings or {}), "sms": sms_settings}
            await session.commit()
    async with platform.sessions() as session:
        assert (await session.get(PhoneNumber, made["id"])) is not None
    return SmsLine(platform, standin, space, e164, made["id"], account_sid)


@pytest.fixture
async def sms_stack(
    temporal_env: WorkflowEnvironment, twilio_standin: TwilioStandIn, tmp_path: Path
) -> AsyncIterator[Platform]:
    async with running_stack(temporal_env, tmp_path, twilio_api_base_url=twilio_standin.url) as platform:
        assert platform.app is not None
        twilio_standin.webhook_transport = httpx.ASGITransport(app=platform.app)
        yield platform
    twilio_standin.clear_failures()
    twilio_standin.delays.clear()


LineFactory = Callable[..., Awaitable[SmsLine]]


@pytest.fixture
def line_factory(sms_stack: Platform, twilio_standin: TwilioStandIn) -> LineFactory:
    async def make(**kwargs: Any) -> SmsLine:
        return await new_line(sms_stack, twilio_standin, **kwargs)

    return make


def new_sid() -> str:
    return "SM" + uuid.uuid4().hex
