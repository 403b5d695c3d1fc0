"""The carrier's answering-machine detection: outbound calls with ``amd`` ask Twilio for asynchronous AMD, and its
signed ``AsyncAmdStatusCallback`` (sent by the stand-in) reaches the call's workflow — verified like every Twilio
webhook, kept to the signing account's space, one effect however often it is retried."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.api.resources import twilio_number
from tests.conftest import Platform, SpaceKeys, unique_e164
from tests.support.stack import eventually, running_stack
from tests.twilio_standin import (
    OTHER_ACCOUNT_SID,
    OTHER_AUTH_TOKEN,
    TEST_ACCOUNT_SID,
    TEST_AUTH_TOKEN,
    CallRecord,
    TwilioStandIn,
)

PUBLIC = "https://telephony.example.com"


@pytest.fixture
async def stack(
    temporal_env: WorkflowEnvironment, twilio_standin: TwilioStandIn, tmp_path: Path
) -> AsyncIterator[Platform]:
    async with running_stack(temporal_env, tmp_path, twilio_api_base_url=twilio_standin.url) as platform:
        assert platform.app is not None
        twilio_standin.webhook_transport = httpx.ASGITransport(app=platform.app)
        yield platform


@dataclass
class Placed:
    space: SpaceKeys
    call: dict[str, Any]
    record: CallRecord

    def path(self, suffix: str = "") -> str:
        return self.space.path(f"/calls/{self.call['id']}{suffix}")


@dataclass
class Line:
    space: SpaceKeys
    e164: str


async def line(
    stack: Platform, carrier: TwilioStandIn, account: tuple[str, str] = (TEST_ACCOUNT_SID, TEST_AUTH_TOKEN)
) -> Line:
    """A space with a media-stream number on its own carrier account (one space per account in a test)."""
    space = await stack.new_space()
    e164 = await twilio_number(stack.client, space, media_mode="stream", account_sid=account[0], auth_token=account[1])
    carrier.add_incoming(account[0], e164)
    return Line(space, e164)


async def place(stack: Platform, carrier: TwilioStandIn, amd: dict[str, Any] | None, on: Line | None = None) -> Placed:
    """An outbound media-stream call, placed over the API and answered by the callee."""
    on = on or await line(stack, carrier)
    space, e164 = on.space, on.e164
    callee = unique_e164()
    body: dict[str, Any] = {"from_number": e164, "to_number": callee}
    if amd is not None:
        body["amd"] = amd
    placed = await stack.client.post(space.path("/calls"), json=body, headers=space.admin)
    assert placed.status_code == 201, placed.text

    async def dialed() -> CallRecord | None:
        return next((r for r in carrier.calls.values() if r.to == callee), None)

    record = await eventually(dialed)
    await carrier.send_status_callback(record.sid, "in-progress")
    result = Placed(space, placed.json(), record)

    async def connected() -> bool:
        return (await detail(stack, result))["state"] == "connected"

    await eventually(connected)
    return result


async def detail(stack: Platform, placed: Placed) -> dict[str, Any]:
    response = await stack.client.get(placed.path(), headers=placed.space.viewer)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def events(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [e for e in body["timeline"] if e["event"] == name]


async def test_calls_with_amd_ask_the_carrier_for_async_detection(
    stack: Platform, twilio_standin: TwilioStandIn
) -> None:
    ours = await line(stack, twilio_standin)
    with_amd = await place(stack, twilio_standin, {"on_machine": "hangup"}, ours)
    [create] = [r for r in twilio_standin.requests_for("create_call") if r.form["To"] == with_amd.record.to]
    assert create.form["MachineDetection"] == "DetectMessageEnd" and create.form["AsyncAmd"] == "true"
    workflow_id = with_amd.call["workflow_id"]
    assert create.form["AsyncAmdStatusCallback"] == f"{PUBLIC}/webhooks/twilio/amd?workflow_id={workflow_id}"
    assert with_amd.record.async_amd and with_amd.record.machine_detection == "DetectMessageEnd"

    without = await place(stack, twilio_standin, None, ours)
    [plain] = [r for r in twilio_standin.requests_for("create_call") if r.form["To"] == without.record.to]
    assert "MachineDetection" not in plain.form and "AsyncAmd" not in plain.form
    with pytest.raises(ValueError, match="did not ask"):
        await twilio_standin.send_amd_callback(without.record.sid)

    body = {"from_number": ours.e164, "to_number": unique_e164(), "amd": {"on_machine": "leave_message"}}
    refused = await stack.client.post(ours.space.path("/calls"), json=body, headers=ours.space.admin)
    assert refused.status_code == 422 and "leave_message needs a message" in refused.text


async def test_a_machine_ends_a_hangup_call_once_however_often_the_carrier_says_so(
    stack: Platform, twilio_standin: TwilioStandIn
) -> None:
    placed = await place(stack, twilio_standin, {"on_machine": "hangup"})
    twilio_standin.amd_answers[placed.record.to] = ("machine_end_beep", 4200)
    first = await twilio_standin.send_amd_callback(placed.record.sid)
    assert first.status_code == 204, first.text

    async def ended() -> dict[str, Any] | None:
        body = await detail(stack, placed)
        return body if body["state"] == "ended" else None

    body = await eventually(ended)
    assert (body["answered_by"], body["amd_decision_ms"], body["end_reason"]) == ("machine", 4200, "completed")
    assert events(body, "machine_hangup") and not body["voicemail_left"]
    [noted] = events(body, "answered_by")
    assert noted["detail"] == "machine (carrier, 4200 ms)"

    async def carrier_hung_up() -> bool:
        return twilio_standin.calls[placed.record.sid].status == "completed"

    await eventually(carrier_hung_up)  # the workflow hung the carrier's leg up
    # Twilio retries the callback (and its verdict may differ): nothing more happens.
    again = await twilio_standin.send_amd_callback(placed.record.sid, "human", 900)
    assert again.status_code == 204
    body = await detail(stack, placed)
    assert len(events(body, "answered_by")) == 1 and body["answered_by"] == "machine"


async def test_a_person_keeps_the_call_and_a_late_machine_verdict_is_ignored(
    stack: Platform, twilio_standin: TwilioStandIn
) -> None:
    placed = await place(stack, twilio_standin, {"on_machine": "hangup"})
    for _ in range(2):  # a duplicate delivery
        assert (await twilio_standin.send_amd_callback(placed.record.sid, "human", 1300)).status_code == 204
    assert (await twilio_standin.send_amd_callback(placed.record.sid, "machine_start", 2000)).status_code == 204
    body = await detail(stack, placed)
    assert (body["state"], body["answered_by"], body["amd_decision_ms"]) == ("connected", "human", 1300)
    assert len(events(body, "answered_by")) == 1


async def test_forged_foreign_and_malformed_callbacks_change_nothing(
    stack: Platform, twilio_standin: TwilioStandIn
) -> None:
    victim = await place(stack, twilio_standin, {"on_machine": "hangup"})
    url = f"{PUBLIC}/webhooks/twilio/amd?workflow_id={victim.call['workflow_id']}"
    params = {
        "AccountSid": TEST_ACCOUNT_SID,
        "CallSid": victim.record.sid,
        "AnsweredBy": "machine_end_beep",
        "MachineDetectionDuration": "3000",
    }
    forged = await twilio_standin.post_webhook(url, params, "not-the-auth-token")
    assert forged.status_code == 403

    # Another space's account, with a valid signature of its own, names the victim's call: refused.
    other = await line(stack, twilio_standin, (OTHER_ACCOUNT_SID, OTHER_AUTH_TOKEN))
    attacker = await place(stack, twilio_standin, {"on_machine": "hangup"}, other)
    foreign = await twilio_standin.post_webhook(
        url, params | {"AccountSid": OTHER_ACCOUNT_SID, "CallSid": attacker.record.sid}, OTHER_AUTH_TOKEN
    )
    assert foreign.status_code == 404 and "no call" in foreign.json()["detail"]
    no_query = await twilio_standin.post_webhook(
        f"{PUBLIC}/webhooks/twilio/amd", params | {"AccountSid": OTHER_ACCOUNT_SID}, OTHER_AUTH_TOKEN
    )
    assert no_query.status_code == 204  # the carrier's call id names no call of that space: nothing to do

    bad = await twilio_standin.post_webhook(url, params | {"AnsweredBy": "robot"}, TEST_AUTH_TOKEN)
    assert bad.status_code == 400 and "AnsweredBy" in bad.json()["detail"]
    digits = await twilio_standin.post_webhook(url, params | {"MachineDetectionDuration": "٣٠٠٠"}, TEST_AUTH_TOKEN)
    assert digits.status_code == 400

    for placed in (victim, attacker):
        body = await detail(stack, placed)
        assert body["state"] == "connected" and body["answered_by"] is None and not events(body, "answered_by")


async def test_an_inbound_call_cannot_be_given_a_verdict(stack: Platform, twilio_standin: TwilioStandIn) -> None:
    space = await stack.new_space()
    e164 = await twilio_number(
        stack.client, space, media_mode="stream", account_sid=TEST_ACCOUNT_SID, auth_token=TEST_AUTH_TOKEN
    )
    webhooks = {"VoiceUrl": f"{PUBLIC}/webhooks/twilio/voice", "StatusCallback": f"{PUBLIC}/webhooks/twilio/status"}
    twilio_standin.add_incoming(TEST_ACCOUNT_SID, e164, **webhooks)
    record, _ = await twilio_standin.incoming_call(e164, "+14155550177")
    params = {"AccountSid": TEST_ACCOUNT_SID, "CallSid": record.sid, "AnsweredBy": "human"}
    refused = await twilio_standin.post_webhook(f"{PUBLIC}/webhooks/twilio/amd", params, TEST_AUTH_TOKEN)
    assert refused.status_code == 409 and "outbound" in refused.json()["detail"]
