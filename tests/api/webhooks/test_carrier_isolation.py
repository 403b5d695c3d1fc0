"""Tenant isolation at the carrier edge: one space's valid carrier credentials (or its numbers, for LiveKit's
SIP events) never act on another space's call. Each entry point is tried against a live call of space B with
space A's credentials: refused exactly like an unknown call, B's call unchanged, nothing signalled."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from livekit.protocol.models import ParticipantInfo
from temporalio.testing import WorkflowEnvironment
from twilio.request_validator import RequestValidator

from models import calls as c
from models.call_contract import STREAM_WORKFLOW_PARAMETER, call_workflow_id
from models.enums import CallState
from models.sip_headers import WORKFLOW_ID_ATTRIBUTE
from tests.api.resources import twilio_number
from tests.conftest import Platform, SpaceKeys
from tests.livekit_standin import LiveKitStandIn
from tests.support.media_stream_client import TwilioMediaStream
from tests.support.stack import eventually, livekit_settings, running_stack, serve_http
from tests.twilio_standin import (
    OTHER_ACCOUNT_SID,
    OTHER_AUTH_TOKEN,
    TEST_ACCOUNT_SID,
    TEST_AUTH_TOKEN,
    TwilioStandIn,
)
from voice.media_stream.extension import MediaStreamExtension
from workflows.call_client import CallClient

PUBLIC = "https://telephony.example.com"
STREAM_URL = "wss://telephony.example.com/media/twilio"


@dataclass
class Tenant:
    space: SpaceKeys
    e164: str
    account_sid: str
    auth_token: str

    def sign(self, url: str, params: dict[str, str]) -> dict[str, str]:
        return {"X-Twilio-Signature": RequestValidator(self.auth_token).compute_signature(url, params)}


@dataclass
class Edge:
    stack: Platform
    base_url: str
    calls: CallClient
    a: Tenant  # the attacker: valid credentials of its own space
    b: Tenant  # the victim


@pytest.fixture
async def edge(
    temporal_env: WorkflowEnvironment, twilio_standin: TwilioStandIn, livekit_standin: LiveKitStandIn, tmp_path: Path
) -> AsyncIterator[Edge]:
    async with running_stack(
        temporal_env,
        tmp_path,
        extensions=[MediaStreamExtension()],
        twilio_api_base_url=twilio_standin.url,
        **livekit_settings(livekit_standin),
        livekit_sip_host="sip.livekit.test",
    ) as stack:
        assert stack.app is not None
        tenants = []
        for sid, token in ((TEST_ACCOUNT_SID, TEST_AUTH_TOKEN), (OTHER_ACCOUNT_SID, OTHER_AUTH_TOKEN)):
            space = await stack.new_space()
            e164 = await twilio_number(stack.client, space, media_mode="stream", account_sid=sid, auth_token=token)
            tenants.append(Tenant(space, e164, sid, token))
        calls = CallClient(temporal_env.client, stack.settings.task_queue)
        async with serve_http(stack.app) as base_url:
            livekit_standin.webhook_url = f"{base_url}/webhooks/livekit"
            yield Edge(stack, base_url, calls, tenants[0], tenants[1])


def _params(tenant: Tenant, to: str, call_sid: str, **extra: str) -> dict[str, str]:
    return {
        "CallSid": call_sid,
        "AccountSid": tenant.account_sid,
        "From": "+14155550199",
        "To": to,
        "CallStatus": "ringing",
        "Direction": "inbound",
        **extra,
    }


async def _post(edge: Edge, tenant: Tenant, path: str, params: dict[str, str]) -> httpx.Response:
    return await edge.stack.client.post(path, data=params, headers=tenant.sign(f"{PUBLIC}{path}", params))


async def _b_call(edge: Edge) -> tuple[str, str, dict[str, str]]:
    """A live call of space B, as its own carrier webhook started it: (CallSid, workflow id, stream parameters)."""
    sid = "CA" + uuid.uuid4().hex
    answer = await _post(edge, edge.b, "/webhooks/twilio/voice", _params(edge.b, edge.b.e164, sid))
    stream = ET.fromstring(answer.text).find("./Connect/Stream")
    assert stream is not None
    parameters = {str(p.get("name")): str(p.get("value")) for p in stream.findall("Parameter")}
    workflow_id = call_workflow_id(edge.b.space.id, sid)
    assert parameters[STREAM_WORKFLOW_PARAMETER] == workflow_id

    async def routed() -> bool:
        view = await edge.calls.call(workflow_id, space_id=edge.b.space.id).state()
        return view.conversation_id is not None

    await eventually(routed)
    return sid, workflow_id, parameters


async def _unchanged(edge: Edge, workflow_id: str, before: c.CallStateView) -> None:
    after = await edge.calls.call(workflow_id, space_id=edge.b.space.id).state()
    assert after.state is before.state is CallState.RINGING
    assert after.timeline == before.timeline


async def test_twilio_webhooks_signed_by_another_space_never_reach_the_call(edge: Edge) -> None:
    sid, workflow_id, _ = await _b_call(edge)
    before = await edge.calls.call(workflow_id, space_id=edge.b.space.id).state()
    a = edge.a

    # The voice webhook for B's number and B's CallSid, signed by A: rejected, and no call is started.
    voice = await _post(edge, a, "/webhooks/twilio/voice", _params(a, edge.b.e164, sid))
    assert voice.status_code == 200 and ET.fromstring(voice.text).find("Reject") is not None
    # Naming B's workflow in the URL (as for calls we place) gets no stream either.
    named = await _post(edge, a, f"/webhooks/twilio/voice?workflow_id={workflow_id}", _params(a, edge.b.e164, sid))
    assert ET.fromstring(named.text).find("Reject") is not None and workflow_id not in named.text
    # Status callbacks that would end B's call: answered like any unknown call, and nothing is signalled.
    for path in ("/webhooks/twilio/status", f"/webhooks/twilio/status?workflow_id={workflow_id}"):
        for direction in ("inbound", "outbound-api"):
            completed = _params(a, edge.b.e164, sid, CallStatus="completed", Direction=direction)
            assert (await _post(edge, a, path, completed)).status_code == 204
    await _unchanged(edge, workflow_id, before)
    # A's own view of that CallSid is an unknown call.
    with pytest.raises(Exception, match="not found"):
        await edge.calls.call(workflow_id, space_id=a.space.id).state()
    assert not await edge.calls.call(workflow_id, space_id=a.space.id).hangup_received(c.HangupEvent())

    # B's own callback still reaches it.
    own = _params(edge.b, edge.b.e164, sid, CallStatus="completed")
    assert (await _post(edge, edge.b, "/webhooks/twilio/status", own)).status_code == 204

    async def ended() -> bool:
        view = await edge.calls.call(workflow_id, space_id=edge.b.space.id).state()
        return view.state is CallState.ENDED

    await eventually(ended)


def _stream(edge: Edge, tenant: Tenant, parameters: dict[str, str]) -> TwilioMediaStream:
    signature = RequestValidator(tenant.auth_token).compute_signature(STREAM_URL, {})
    return TwilioMediaStream(
        f"{edge.base_url.replace('http', 'ws')}/media/twilio",
        signature=signature,
        account_sid=tenant.account_sid,
        parameters=parameters,
    )


async def test_a_media_stream_is_bound_to_its_call_and_its_space(edge: Edge) -> None:
    _, workflow_id, parameters = await _b_call(edge)
    before = await edge.calls.call(workflow_id, space_id=edge.b.space.id).state()
    attempts = [
        (edge.a, parameters),  # B's stream parameters (token included), opened with A's signed credentials
        (edge.b, {STREAM_WORKFLOW_PARAMETER: workflow_id}),  # B's own account, but no token
        (edge.b, {STREAM_WORKFLOW_PARAMETER: workflow_id, "token": "9999999999.forged"}),
    ]
    other_parameters = (await _b_call(edge))[2]
    attempts.append((edge.b, {**other_parameters, STREAM_WORKFLOW_PARAMETER: workflow_id}))  # another call's token
    for tenant, params in attempts:
        stream = _stream(edge, tenant, params)
        async with stream:
            await stream.start()
            await eventually(stream_closed(stream))
        assert stream.closed is not None and stream.closed[0] == 1008, params
    await _unchanged(edge, workflow_id, before)


def stream_closed(stream: TwilioMediaStream) -> Callable[[], Awaitable[bool]]:
    async def closed() -> bool:
        return stream.closed is not None

    return closed


async def test_livekit_sip_events_act_only_on_calls_of_the_numbers_space(
    edge: Edge, livekit_standin: LiveKitStandIn
) -> None:
    _, workflow_id, _ = await _b_call(edge)
    before = await edge.calls.call(workflow_id, space_id=edge.b.space.id).state()

    def sip_participant(our_number: str) -> ParticipantInfo:
        # A SIP header (X-BT-Workflow-Id) naming B's call, arriving on A's number through A's trunk.
        participant = ParticipantInfo(
            identity=f"sip_{uuid.uuid4().hex[:8]}",
            attributes={
                WORKFLOW_ID_ATTRIBUTE: workflow_id,
                "sip.callID": f"SCL_{uuid.uuid4().hex}",
                "sip.phoneNumber": "+14155550199",
                "sip.trunkPhoneNumber": our_number,
            },
        )
        participant.kind = ParticipantInfo.Kind.SIP
        return participant

    forged = sip_participant(edge.a.e164)
    for event in ("participant_joined", "participant_left"):
        assert await livekit_standin.send_webhook(event, room="room-a", participant=forged) == 204
    await _unchanged(edge, workflow_id, before)
    # The same event on B's own number does reach B's call.
    own = sip_participant(edge.b.e164)
    assert await livekit_standin.send_webhook("participant_joined", room="room-b", participant=own) == 204

    async def connected() -> bool:
        view = await edge.calls.call(workflow_id, space_id=edge.b.space.id).state()
        return view.state is CallState.CONNECTED

    await eventually(connected)
