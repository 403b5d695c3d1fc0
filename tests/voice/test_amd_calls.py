"""Answering-machine detection on real outbound media-stream calls, end to end: the call is placed over the API
with ``amd``, the carrier stand-in dials and answers, and the callee (the media-stream client) plays a synthesised
voicemail greeting with a beep, or a person's hello. Our detector hears it through the real voice runtime; the
agent's words are transcribed by Whisper."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np

from models import calls as c
from tests.conftest import unique_e164
from tests.support.amd_corpus import VOICEMAIL_GREETINGS, beep, line_noise, speech
from tests.support.assets import stored_asset, wav_bytes
from tests.support.media_stream_client import TwilioMediaStream
from tests.support.stack import eventually
from tests.twilio_standin import TEST_AUTH_TOKEN, CallRecord
from tests.voice.test_media_stream import Line, _hear, _state, _stream, line  # noqa: F401 (fixture)
from voice.speech.whisper_engine import WhisperEngine

MESSAGE = "Hello, this is the garden center. Your order is ready for pickup. Goodbye."


async def _dial(on: Line, amd: dict[str, Any]) -> tuple[dict[str, Any], CallRecord, dict[str, str]]:
    """Place the call over the API; the callee answers: the stream's parameters from the call's TwiML."""
    space = on.space
    callee = unique_e164()
    body = {"from_number": on.e164, "to_number": callee, "amd": amd}
    placed = await on.stack.client.post(space.path("/calls"), json=body, headers=space.admin)
    assert placed.status_code == 201, placed.text

    async def dialed() -> CallRecord | None:
        return next((r for r in on.carrier.calls.values() if r.to == callee), None)

    record = await eventually(dialed)
    assert record.url is not None
    answer = {
        "CallSid": record.sid,
        "AccountSid": record.account_sid,
        "From": on.e164,
        "To": callee,
        "CallStatus": "in-progress",
        "Direction": "outbound-api",
    }
    twiml = await on.carrier.post_webhook(record.url, answer, TEST_AUTH_TOKEN)
    stream = ET.fromstring(twiml.text).find("./Connect/Stream")
    assert stream is not None, twiml.text
    parameters = {str(p.get("name")): str(p.get("value")) for p in stream.findall("Parameter")}
    await on.carrier.send_status_callback(record.sid, "in-progress")
    return placed.json(), record, parameters


async def _ended(on: Line, workflow_id: str) -> c.CallStateView | None:
    view = await _state(on, workflow_id)
    return view if view.state.value == "ended" else None


def _voicemail() -> np.ndarray:
    greeting = speech(VOICEMAIL_GREETINGS[0])
    return np.concatenate([line_noise(300, 1), greeting, line_noise(400, 2), beep(1000.0, 500)])


async def test_a_voicemail_hears_the_message_after_its_beep_and_the_call_ends(
    line: Line,  # noqa: F811
    ears: WhisperEngine,
) -> None:
    call, record, parameters = await _dial(line, {"on_machine": "leave_message", "message": MESSAGE})
    voicemail = await asyncio.to_thread(_voicemail)
    phone: TwilioMediaStream
    async with _stream(line, parameters) as phone:
        await phone.start()
        await phone.say(voicemail, 8000)  # greeting, then the beep; line silence after it
        beep_over = phone.last_caller_audio_at
        message = await phone.next_reply(within=60)
        assert message.first_audio_at >= beep_over  # nothing was said over the greeting or the beep
        heard = await _hear(ears, message.pcm8k())
        assert "order is ready" in heard and "garden" in heard, heard
        final = await eventually(lambda: _ended(line, call["workflow_id"]), within=30)
    assert final.answered_by is not None and final.answered_by.value == "machine"
    assert final.voicemail_left and final.end_reason is not None and final.end_reason.value == "completed"
    assert final.amd_decision_ms is not None and 1000 < final.amd_decision_ms < len(voicemail) / 8
    events = [e.event for e in final.timeline]
    assert events.index("answered_by") < events.index("voicemail_left")
    assert "audio" in next(e.detail or "" for e in final.timeline if e.event == "answered_by")
    assert len(phone.segments) == 1  # the message only: the agent never greeted the machine

    async def carrier_hung_up() -> bool:
        return line.carrier.calls[record.sid].status == "completed"

    await eventually(carrier_hung_up)


async def test_a_person_is_greeted_by_the_agent(
    line: Line,  # noqa: F811
    ears: WhisperEngine,
) -> None:
    call, _, parameters = await _dial(line, {"on_machine": "leave_message", "message": MESSAGE})
    hello = await asyncio.to_thread(lambda: np.concatenate([line_noise(300, 3), speech("Hello?")]))
    async with _stream(line, parameters) as phone:
        await phone.start()
        await phone.say(hello, 8000)
        greeting = await phone.next_reply(within=60)
        heard = await _hear(ears, greeting.pcm8k())
        assert "thanks for calling" in heard, heard
        view = await _state(line, call["workflow_id"])
        assert view.answered_by is not None and view.answered_by.value == "human"
        assert view.amd_decision_ms is not None and view.amd_decision_ms < 3000
        assert view.state.value == "active" and not view.voicemail_left
        await phone.stop()
    final = await eventually(lambda: _ended(line, call["workflow_id"]), within=30)
    assert "voicemail_left" not in [e.event for e in final.timeline]


async def test_a_machine_on_a_hangup_call_is_hung_up_without_a_word(
    line: Line,  # noqa: F811
) -> None:
    call, record, parameters = await _dial(line, {"on_machine": "hangup"})
    voicemail = await asyncio.to_thread(_voicemail)
    async with _stream(line, parameters) as phone:
        await phone.start()
        speaking = asyncio.create_task(phone.say(voicemail, 8000))
        final = await eventually(lambda: _ended(line, call["workflow_id"]), within=30)
        speaking.cancel()
    assert final.answered_by is not None and final.answered_by.value == "machine"
    assert [e.event for e in final.timeline][-1] == "machine_hangup" and not final.voicemail_left
    assert final.amd_decision_ms is not None and final.amd_decision_ms < 4000  # long before the greeting ends
    assert not phone.segments  # the agent said nothing to the machine

    async def carrier_hung_up() -> bool:
        return line.carrier.calls[record.sid].status == "completed"

    await eventually(carrier_hung_up)


async def test_the_first_verdict_wins_when_the_carrier_answers_first(
    line: Line,  # noqa: F811
    ears: WhisperEngine,
) -> None:
    """The carrier's AMD said "human" before our detector finished: the workflow keeps the carrier's verdict, and
    the voice runtime follows it (the agent greets) even though our detector hears a machine."""
    call, record, parameters = await _dial(line, {"on_machine": "leave_message", "message": MESSAGE})
    voicemail = await asyncio.to_thread(_voicemail)
    async with _stream(line, parameters) as phone:
        await phone.start()
        speaking = asyncio.create_task(phone.say(voicemail, 8000))
        carrier = await line.carrier.send_amd_callback(record.sid, "human", 700)
        assert carrier.status_code == 204
        greeting = await phone.next_reply(within=60)
        assert "thanks for calling" in await _hear(ears, greeting.pcm8k())
        speaking.cancel()
        view = await _state(line, call["workflow_id"])
        await phone.stop()
    assert view.answered_by is not None and view.answered_by.value == "human" and not view.voicemail_left
    [verdict] = [e.detail for e in view.timeline if e.event == "answered_by"]
    assert verdict == "human (carrier, 700 ms)"


async def test_a_recorded_message_asset_is_played_to_a_voicemail_after_its_beep(
    line: Line,  # noqa: F811
    ears: WhisperEngine,
) -> None:
    stack = line.stack
    recording = await asyncio.to_thread(speech, "Your parcel is waiting at the front desk. Goodbye.")
    asset_id = await stored_asset(stack.sessions, stack.settings, line.space.id, wav_bytes(recording, 8000))
    call, _, parameters = await _dial(line, {"on_machine": "leave_message", "message_asset_id": asset_id})
    voicemail = await asyncio.to_thread(_voicemail)
    async with _stream(line, parameters) as phone:
        await phone.start()
        await phone.say(voicemail, 8000)
        beep_over = phone.last_caller_audio_at
        message = await phone.next_reply(within=60)
        assert message.first_audio_at >= beep_over
        heard = await _hear(ears, message.pcm8k())
        assert "parcel" in heard and "front desk" in heard, heard  # the recording, not the agent's words
        final = await eventually(lambda: _ended(line, call["workflow_id"]), within=30)
    assert final.voicemail_left and len(phone.segments) == 1
