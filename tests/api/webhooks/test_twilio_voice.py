"""Twilio's voice and status webhooks, signed by the official `twilio` package, drive the CallWorkflow."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from models import calls as c
from models.call_contract import call_workflow_id
from tests.api.resources import twilio_number
from tests.conftest import Platform, SpaceKeys, unique_e164
from tests.livekit_standin import LiveKitStandIn
from tests.support.stack import eventually, livekit_settings, running_stack
from tests.twilio_standin import OTHER_ACCOUNT_SID, OTHER_AUTH_TOKEN, TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TwilioStandIn
from workflows.calls import CallWorkflow

PUBLIC = "https://telephony.example.com"


@pytest.fixture
async def stack(
    temporal_env: WorkflowEnvironment, twilio_standin: TwilioStandIn, livekit_standin: LiveKitStandIn, tmp_path: Path
) -> AsyncIterator[Platform]:
    async with running_stack(
        temporal_env,
        tmp_path,
        twilio_api_base_url=twilio_standin.url,
        **livekit_settings(livekit_standin),
        livekit_sip_host="sip.livekit.test",
    ) as platform:
        assert platform.app is not None
        twilio_standin.webhook_transport = httpx.ASGITransport(app=platform.app)
        yield platform


async def _line(stack: Platform, media_mode: str) -> tuple[SpaceKeys, str]:
    space = await stack.new_space()
    e164 = await twilio_number(
        stack.client, space, media_mode=media_mode, account_sid=TEST_ACCOUNT_SID, auth_token=TEST_AUTH_TOKEN
    )
    return space, e164


def _call_params(to: str, call_sid: str | None = None, **extra: str) -> dict[str, str]:
    return {
        "CallSid": call_sid or "CA" + uuid.uuid4().hex,
        "AccountSid": TEST_ACCOUNT_SID,
        "From": "+14155550199",
        "To": to,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
        **extra,
    }


async def _state(stack: Platform, space_id: str, call_sid: str) -> c.CallStateView:
    from tests.support.stack import temporal_client

    handle = temporal_client(stack).get_workflow_handle(call_workflow_id(space_id, call_sid))
    return await handle.query(CallWorkflow.get_state)


async def test_stream_number_answers_a_media_stream_and_starts_the_call(
    stack: Platform, twilio_standin: TwilioStandIn
) -> None:
    space, e164 = await _line(stack, "stream")
    params = _call_params(e164)
    response = await twilio_standin.post_webhook(f"{PUBLIC}/webhooks/twilio/voice", params, TEST_AUTH_TOKEN)
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/xml")
    stream = ET.fromstring(response.text).find("./Connect/Stream")
    assert stream is not None and stream.get("url") == "wss://telephony.example.com/media/twilio"
    parameters = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert parameters["workflow_id"] == call_workflow_id(space.id, params["CallSid"])
    assert parameters["token"]  # binds the stream to this call (checked at the stream's start)

    state = await _state(stack, space.id, params["CallSid"])
    assert state.state.value == "ringing" and state.space_id == space.id

    # Twilio retries the webhook: same answer, same call, one row.
    again = await twilio_standin.post_webhook(f"{PUBLIC}/webhooks/twilio/voice", params, TEST_AUTH_TOKEN)
    again_stream = ET.fromstring(again.text).find("./Connect/Stream")
    assert again_stream is not None
    assert {p.get("name"): p.get("value") for p in again_stream.findall("Parameter")}["workflow_id"] == (
        parameters["workflow_id"]
    )

    async def one_row() -> list[dict[str, Any]] | None:
        rows: list[dict[str, Any]] = (await stack.client.get(space.path("/calls"), headers=space.viewer)).json()["data"]
        return rows if rows else None

    rows = await eventually(one_row)
    assert [r["id"] for r in rows] == [state.call_id]
    assert rows[0]["from_number"] == "+14155550199" and rows[0]["direction"] == "inbound"


async def test_livekit_number_bridges_to_livekit_sip_naming_the_workflow(
    stack: Platform, twilio_standin: TwilioStandIn
) -> None:
    space, e164 = await _line(stack, "livekit")
    params = _call_params(e164)
    response = await twilio_standin.post_webhook(f"{PUBLIC}/webhooks/twilio/voice", params, TEST_AUTH_TOKEN)
    sip = ET.fromstring(response.text).find("./Dial/Sip")
    assert sip is not None and sip.text == (
        f"sip:{e164}@sip.livekit.test;transport=tcp?X-BT-Workflow-Id={call_workflow_id(space.id, params['CallSid'])}"
    )


async def test_forged_or_foreign_requests_are_403_and_start_nothing(
    stack: Platform, twilio_standin: TwilioStandIn
) -> None:
    space, e164 = await _line(stack, "stream")
    url = f"{PUBLIC}/webhooks/twilio/voice"
    for params, token in (
        (_call_params(e164), OTHER_AUTH_TOKEN),  # signed with another token
        (_call_params(e164, AccountSid="AC" + "9" * 32), TEST_AUTH_TOKEN),  # an account nobody connected
    ):
        response = await twilio_standin.post_webhook(url, params, token)
        assert response.status_code == 403
        with pytest.raises(RPCError):
            await _state(stack, space.id, params["CallSid"])
    # A valid signature over other parameters, or over another URL, is no signature.
    params = _call_params(e164)
    tampered = await stack.client.post(
        "/webhooks/twilio/voice",
        data=params | {"To": "+14155550100"},
        headers={"X-Twilio-Signature": twilio_signature_for(params)},
    )
    assert tampered.status_code == 403
    unsigned = await stack.client.post("/webhooks/twilio/voice", data=params)
    assert unsigned.status_code == 403
    other_url = await stack.client.post(
        "/webhooks/twilio/status", data=params, headers={"X-Twilio-Signature": twilio_signature_for(params)}
    )
    assert other_url.status_code == 403


def twilio_signature_for(params: dict[str, str]) -> str:
    from twilio.request_validator import RequestValidator

    return str(RequestValidator(TEST_AUTH_TOKEN).compute_signature(f"{PUBLIC}/webhooks/twilio/voice", params))


async def test_unknown_number_is_rejected(stack: Platform, twilio_standin: TwilioStandIn) -> None:
    space, _ = await _line(stack, "stream")
    params = _call_params(unique_e164())
    response = await twilio_standin.post_webhook(f"{PUBLIC}/webhooks/twilio/voice", params, TEST_AUTH_TOKEN)
    assert response.status_code == 200
    assert ET.fromstring(response.text).find("Reject") is not None
    with pytest.raises(RPCError):
        await _state(stack, space.id, params["CallSid"])


async def test_malformed_webhooks_are_4xx(stack: Platform, twilio_standin: TwilioStandIn) -> None:
    _, e164 = await _line(stack, "stream")
    url = f"{PUBLIC}/webhooks/twilio/voice"
    missing = {k: v for k, v in _call_params(e164).items() if k != "CallSid"}
    assert (await twilio_standin.post_webhook(url, missing, TEST_AUTH_TOKEN)).status_code == 400
    bad_sid = _call_params(e164, call_sid="CA-not-a-sid")
    assert (await twilio_standin.post_webhook(url, bad_sid, TEST_AUTH_TOKEN)).status_code == 400
    status_url = f"{PUBLIC}/webhooks/twilio/status"
    odd_status = _call_params(e164, CallStatus="exploded")
    assert (await twilio_standin.post_webhook(status_url, odd_status, TEST_AUTH_TOKEN)).status_code == 400
    garbage = await stack.client.post(
        "/webhooks/twilio/voice", content=b"\xff\xfe%%%", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert garbage.status_code == 400


async def test_status_callbacks_in_any_order_end_the_call(stack: Platform, twilio_standin: TwilioStandIn) -> None:
    space, e164 = await _line(stack, "stream")
    status_url = f"{PUBLIC}/webhooks/twilio/status"
    # "completed" arrives first, before the voice webhook and before "in-progress".
    params = _call_params(e164)
    completed = await twilio_standin.post_webhook(
        status_url, params | {"CallStatus": "completed", "CallDuration": "42"}, TEST_AUTH_TOKEN
    )
    assert completed.status_code == 204
    late = await twilio_standin.post_webhook(status_url, params | {"CallStatus": "in-progress"}, TEST_AUTH_TOKEN)
    assert late.status_code == 204

    async def ended() -> c.CallStateView | None:
        state = await _state(stack, space.id, params["CallSid"])
        return state if state.state.value == "ended" else None

    final = await eventually(ended)
    assert final.end_reason is not None and final.end_reason.value == "completed"
    # Once the call's workflow has closed, a retried voice webhook starts nothing new.
    from tests.support.stack import temporal_client

    await temporal_client(stack).get_workflow_handle(call_workflow_id(space.id, params["CallSid"])).result()
    voice = await twilio_standin.post_webhook(f"{PUBLIC}/webhooks/twilio/voice", params, TEST_AUTH_TOKEN)
    assert ET.fromstring(voice.text).find("Reject") is not None


async def test_outbound_stream_call_goes_through_the_carrier(stack: Platform, twilio_standin: TwilioStandIn) -> None:
    space, e164 = await _line(stack, "stream")
    twilio_standin.add_incoming(TEST_ACCOUNT_SID, e164)  # the carrier lets the account call from it
    placed = await stack.client.post(
        space.path("/calls"), json={"from_number": e164, "to_number": "+14155550166"}, headers=space.admin
    )
    assert placed.status_code == 201, placed.text
    call = placed.json()

    async def dialed() -> Any:
        records = [r for r in twilio_standin.calls.values() if r.to == "+14155550166"]
        return records[0] if records else None

    record = await eventually(dialed)
    assert record.from_ == e164
    assert record.url == f"{PUBLIC}/webhooks/twilio/voice?workflow_id={call['workflow_id']}"
    assert record.status_callback is not None and record.status_callback.startswith(f"{PUBLIC}/webhooks/twilio/status?")

    # The callee answers: Twilio fetches the call's Url, then reports the call in progress.
    answer = _call_params("+14155550166", call_sid=record.sid, From=e164, Direction="outbound-api")
    twiml = await twilio_standin.post_webhook(record.url, answer, TEST_AUTH_TOKEN)
    stream = ET.fromstring(twiml.text).find("./Connect/Stream")
    assert stream is not None
    parameters = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert set(parameters) == {"workflow_id", "token"} and parameters["workflow_id"] == call["workflow_id"]
    status = await twilio_standin.send_status_callback(record.sid, "in-progress")
    assert status.status_code == 204

    async def connected() -> dict[str, Any] | None:
        detail = (await stack.client.get(space.path(f"/calls/{call['id']}"), headers=space.viewer)).json()
        return detail if detail["state"] == "connected" else None

    await eventually(connected)
    # Hanging up from the API ends the carrier's leg too.
    ended = await stack.client.post(space.path(f"/calls/{call['id']}/hangup"), headers=space.admin)
    assert ended.status_code == 200 and ended.json()["state"] == "ended"

    async def carrier_hung_up() -> bool:
        return twilio_standin.calls[record.sid].status == "completed"

    await eventually(carrier_hung_up)


async def test_carrier_refusing_to_dial_fails_the_call(stack: Platform, twilio_standin: TwilioStandIn) -> None:
    space, e164 = await _line(stack, "stream")  # the account does not own the number: Twilio refuses
    placed = await stack.client.post(
        space.path("/calls"), json={"from_number": e164, "to_number": "+14155550166"}, headers=space.admin
    )
    assert placed.status_code == 201

    async def failed() -> dict[str, Any] | None:
        detail = (await stack.client.get(space.path(f"/calls/{placed.json()['id']}"), headers=space.viewer)).json()
        return detail if detail["state"] == "ended" else None

    detail = await eventually(failed)
    assert detail["end_reason"] == "failed"
    assert any(e["event"] == "dial_failed" and e["detail"] for e in detail["timeline"])


async def test_a_caller_hanging_up_is_not_hung_up_again(stack: Platform, twilio_standin: TwilioStandIn) -> None:
    space, e164 = await _line(stack, "stream")
    webhooks = {"VoiceUrl": f"{PUBLIC}/webhooks/twilio/voice", "StatusCallback": f"{PUBLIC}/webhooks/twilio/status"}
    twilio_standin.add_incoming(TEST_ACCOUNT_SID, e164, **webhooks)
    record, answer = await twilio_standin.incoming_call(e164, "+14155550155")
    assert ET.fromstring(answer.text).find("./Connect/Stream") is not None
    await twilio_standin.send_status_callback(record.sid, "completed", force=True)
    from tests.support.stack import temporal_client

    result = await temporal_client(stack).get_workflow_handle(call_workflow_id(space.id, record.sid)).result()
    assert result["end_reason"] == "completed"
    assert twilio_standin.requests_for("update_call") == []


async def test_a_stream_ending_mid_call_is_replaced_at_once_and_once(
    stack: Platform, twilio_standin: TwilioStandIn
) -> None:
    """Twilio requests ``<Connect action>`` when the stream ends: the answer is the next stream (the same one for a
    retried request); streams that no media server ever takes end the call rather than loop."""
    space, e164 = await _line(stack, "stream")
    params = _call_params(e164)
    answer = await twilio_standin.post_webhook(f"{PUBLIC}/webhooks/twilio/voice", params, TEST_AUTH_TOKEN)
    workflow_id = call_workflow_id(space.id, params["CallSid"])

    def connect_of(twiml: str) -> tuple[str, str]:
        connect = ET.fromstring(twiml).find("./Connect")
        assert connect is not None and connect.find("Stream") is not None, twiml
        return str(connect.get("action")), str(connect.get("method"))

    action = f"{PUBLIC}/webhooks/twilio/stream-ended?workflow_id={workflow_id}&stream=0"
    assert connect_of(answer.text) == (action, "POST")
    up = params | {"CallStatus": "in-progress"}
    forged = await twilio_standin.post_webhook(action, up, "not-the-auth-token")
    assert forged.status_code == 403
    other_space = await stack.new_space("other")
    await twilio_number(
        stack.client, other_space, media_mode="stream", account_sid=OTHER_ACCOUNT_SID, auth_token=OTHER_AUTH_TOKEN
    )
    foreign = await twilio_standin.post_webhook(action, up | {"AccountSid": OTHER_ACCOUNT_SID}, OTHER_AUTH_TOKEN)
    assert foreign.status_code == 404
    for bad in ("x", "-1", "99999"):
        odd = await twilio_standin.post_webhook(action.replace("stream=0", f"stream={bad}"), up, TEST_AUTH_TOKEN)
        assert odd.status_code == 400, bad
    ahead = await twilio_standin.post_webhook(action.replace("stream=0", "stream=5"), up, TEST_AUTH_TOKEN)
    assert ahead.status_code == 409  # no such stream was ever given to the carrier

    moved = await twilio_standin.post_webhook(action, up, TEST_AUTH_TOKEN)
    retried = await twilio_standin.post_webhook(action, up, TEST_AUTH_TOKEN)  # Twilio retries: the same move
    second = action.replace("stream=0", "stream=1")
    assert connect_of(moved.text) == connect_of(retried.text) == (second, "POST")
    events = [e.event for e in (await _state(stack, space.id, params["CallSid"])).timeline]
    assert events.count("media_lost") == events.count("media_reconnecting") == 1, events

    # Neither stream ever reached a media server: the call fails and the carrier is told to hang up (no loop).
    gave_up = await twilio_standin.post_webhook(second, up, TEST_AUTH_TOKEN)
    assert ET.fromstring(gave_up.text).find("Hangup") is not None, gave_up.text
    state = await _state(stack, space.id, params["CallSid"])
    assert state.state.value == "ended" and state.end_reason is not None and state.end_reason.value == "failed"
    after = await twilio_standin.post_webhook(action, up, TEST_AUTH_TOKEN)
    assert ET.fromstring(after.text).find("Hangup") is not None  # late reports of an ended call: hang up
