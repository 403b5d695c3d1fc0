"""A phone call over a Twilio media stream, end to end, with real audio through the real agent pipeline:
the caller's question is synthesised speech sent as μ-law frames; the agent's spoken answer is transcribed."""

from __future__ import annotations

import asyncio
import io
import wave
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from temporalio.testing import WorkflowEnvironment
from twilio.request_validator import RequestValidator

from models import calls as c
from models.enums import Role
from tests.api.resources import twilio_number
from tests.conftest import Platform, SpaceKeys
from tests.support.media_stream_client import TwilioMediaStream
from tests.support.stack import eventually, running_stack, serve_http, temporal_client
from tests.twilio_standin import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TwilioStandIn
from voice.media_stream.extension import MediaStreamExtension
from voice.speech import HibariTTS
from voice.speech.audio import int16_to_float, resample_int16
from voice.speech.whisper_engine import WhisperEngine
from workflows.calls import CallWorkflow

PUBLIC = "https://telephony.example.com"
STREAM_URL = "wss://telephony.example.com/media/twilio"
HOURS = "We are open from nine in the morning to five in the afternoon, Monday to Friday."
PARKING = (
    "Parking is free in the garage behind the building, entrance on Maple Street. "
    "Take a ticket at the gate and bring it to the front desk, where we will stamp it for you. "
    "The garage has spaces for bicycles and two chargers for electric cars on the first level."
)


@dataclass
class Line:
    stack: Platform
    space: SpaceKeys
    e164: str
    base_url: str
    carrier: TwilioStandIn


@pytest.fixture
async def line(temporal_env: WorkflowEnvironment, tmp_path: Path, twilio_standin: TwilioStandIn) -> AsyncIterator[Line]:
    async with running_stack(
        temporal_env, tmp_path, extensions=[MediaStreamExtension()], twilio_api_base_url=twilio_standin.url
    ) as stack:
        assert stack.app is not None
        await stack.app.state.voice.warm_up()
        space = await stack.new_space()
        agent = {
            "name": "front desk",
            "greeting": "Hello, thanks for calling.",
            "knowledge_base": [
                {"title": "Opening hours", "content": HOURS},
                {"title": "Parking", "content": PARKING},
            ],
            "tts_provider": "local-hibari",
            "transfer_target": "+14155550111",
        }
        e164 = await twilio_number(
            stack.client,
            space,
            media_mode="stream",
            agent=agent,
            account_sid=TEST_ACCOUNT_SID,
            auth_token=TEST_AUTH_TOKEN,
        )
        # The carrier knows the number and sends its calls to us (webhooks go straight into the app).
        twilio_standin.add_incoming(
            TEST_ACCOUNT_SID,
            e164,
            VoiceUrl=f"{PUBLIC}/webhooks/twilio/voice",
            StatusCallback=f"{PUBLIC}/webhooks/twilio/status",
        )
        twilio_standin.webhook_transport = httpx.ASGITransport(app=stack.app)
        async with serve_http(stack.app) as base_url:
            yield Line(stack, space, e164, base_url, twilio_standin)


async def _ring(line: Line) -> dict[str, str]:
    """A call arrives at the carrier; its voice webhook's TwiML names the stream's parameters."""
    record, response = await line.carrier.incoming_call(line.e164, "+14155550142")
    stream = ET.fromstring(response.text).find("./Connect/Stream")
    assert stream is not None
    parameters = {str(p.get("name")): str(p.get("value")) for p in stream.findall("Parameter")}
    return parameters | {"call_sid": record.sid}


def _stream(line: Line, parameters: dict[str, str], token: str = TEST_AUTH_TOKEN) -> TwilioMediaStream:
    signature = RequestValidator(token).compute_signature(STREAM_URL, {})
    return TwilioMediaStream(
        f"{line.base_url.replace('http', 'ws')}/media/twilio",
        signature=signature,
        account_sid=TEST_ACCOUNT_SID,
        parameters=parameters,
    )


def _says_hours(text: str) -> bool:
    """Whisper may write the hours in words or digits."""
    return ("nine" in text or "9" in text) and ("five" in text or "5" in text)


def _heard(ears: WhisperEngine, pcm8k: np.ndarray) -> str:
    return ears.transcribe(int16_to_float(resample_int16(pcm8k, 8000, 16000))).text.lower()


async def _speech(voice: HibariTTS, text: str) -> np.ndarray:
    """Synthesised off the event loop: the loop also carries the call (and its carry_media heartbeat)."""
    return await asyncio.to_thread(voice.synthesize_pcm, text)


async def _hear(ears: WhisperEngine, pcm8k: np.ndarray) -> str:
    return await asyncio.to_thread(_heard, ears, pcm8k)


async def _state(line: Line, workflow_id: str) -> c.CallStateView:
    handle = temporal_client(line.stack).get_workflow_handle(workflow_id)
    view: c.CallStateView = await handle.query(CallWorkflow.get_state)
    return view


async def test_the_agent_answers_a_spoken_question_from_its_knowledge_base(
    line: Line, caller_voice: HibariTTS, ears: WhisperEngine
) -> None:
    parameters = await _ring(line)
    question = await _speech(caller_voice, "What are your opening hours?")
    async with _stream(line, parameters) as phone:
        await phone.start()
        greeting = await phone.next_reply()
        assert "thanks for calling" in await _hear(ears, greeting.pcm8k())
        state = await _state(line, parameters["workflow_id"])
        assert state.state.value == "active"  # the agent's first words made the call active

        await phone.say(question, 24000)
        answer = await phone.next_reply()
        heard = await _hear(ears, answer.pcm8k())
        assert _says_hours(heard), heard
        assert answer.first_audio_at > phone.last_caller_audio_at

        await phone.dtmf("7")
        await phone.stop()

    async def ended() -> c.CallStateView | None:
        view = await _state(line, parameters["workflow_id"])
        return view if view.state.value == "ended" else None

    final = await eventually(ended)
    assert final.end_reason is not None and final.end_reason.value == "completed"
    assert final.dtmf_received == "7"
    assert final.turns and final.turns[0].latency_ms > 0
    # reported while the call went on, with its parts (a speculative reply's come before the turn ends)
    assert final.turns[0].tts_ttfb_ms is not None and final.turns[0].stt_ms is not None, final.turns
    events = [e.event for e in final.timeline]
    assert events.index("connected") < events.index("active") < events.index("hangup")

    space = line.space
    conversation_id = final.conversation_id
    messages = (
        await line.stack.client.get(space.path(f"/conversations/{conversation_id}/messages"), headers=space.viewer)
    ).json()["data"]
    spoken = [(m["role"], m["text"].lower()) for m in messages]
    assert any(role == "caller" and "opening hours" in text for role, text in spoken), spoken
    assert any(role == "agent" and _says_hours(text) for role, text in spoken), spoken


async def test_bad_streams_are_closed_and_others_carry_on(
    line: Line, caller_voice: HibariTTS, ears: WhisperEngine
) -> None:
    good_parameters = await _ring(line)
    async with _stream(line, good_parameters) as good:
        await good.start()
        await good.next_reply()  # the greeting

        forged = _stream(line, await _ring(line), token="not-the-token")
        async with forged:
            await forged.start()
            await eventually(lambda: _closed(forged))
        assert forged.closed is not None and forged.closed[0] == 1008

        garbage = _stream(line, await _ring(line))
        async with garbage:
            await garbage.start()
            await garbage.send({"event": "media", "streamSid": "MZ-someone-else", "media": {"payload": "AAAA"}})
            await eventually(lambda: _closed(garbage))
        assert garbage.closed is not None and garbage.closed[0] == 1007 and "streamSid" in garbage.closed[1]

        await good.say(await _speech(caller_voice, "What are your opening hours?"), 24000)
        assert _says_hours(await _hear(ears, (await good.next_reply()).pcm8k()))
        await good.stop()


async def _closed(stream: TwilioMediaStream) -> bool:
    return stream.closed is not None


async def test_caller_barging_in_cuts_the_agent_off(line: Line, caller_voice: HibariTTS, ears: WhisperEngine) -> None:
    parameters = await _ring(line)
    async with _stream(line, parameters) as phone:
        await phone.start()
        await phone.next_reply()
        await phone.say(await _speech(caller_voice, "Where can I park my car?"), 24000)
        await eventually(lambda: _speaking(phone))  # the long answer has started
        interrupted = len(phone.segments)
        await phone.say(await _speech(caller_voice, "Sorry, what are your opening hours?"), 24000)
        await eventually(lambda: _cleared(phone))
        cut = phone.segments[-2] if len(phone.segments) > 1 else phone.segments[-1]
        full_answer_seconds = len(await _speech(caller_voice, PARKING)) / 24000
        assert len(cut.ulaw) / 8000 < full_answer_seconds / 2  # the caller did not have to hear it all
        answer = await phone.next_reply(after=interrupted)  # it may be complete already: PARKING took a while
        assert _says_hours(await _hear(ears, answer.pcm8k()))
        await phone.stop()


async def _speaking(phone: TwilioMediaStream) -> bool:
    return len(phone.segments) >= 2 and len(phone.segments[-1].ulaw) > 8000  # a second of the answer


async def _cleared(phone: TwilioMediaStream) -> bool:
    return phone.clears > 0


async def test_asking_for_a_person_transfers_the_call_through_the_carrier(line: Line, caller_voice: HibariTTS) -> None:
    parameters = await _ring(line)
    async with _stream(line, parameters) as phone:
        await phone.start()
        await phone.next_reply()
        await phone.say(await _speech(caller_voice, "I would like to speak to a person, please."), 24000)

        async def transferred() -> c.CallStateView | None:
            view = await _state(line, parameters["workflow_id"])
            return view if view.state.value == "ended" else None

        final = await eventually(transferred, within=30)
    assert final.end_reason is not None and final.end_reason.value == "transferred"
    [redirect] = line.carrier.requests_for("update_call")
    assert "<Number>+14155550111</Number>" in redirect.form["Twiml"]
    assert line.carrier.calls[parameters["call_sid"]].status != "completed"  # the caller is with the person now


async def test_a_recorded_call_becomes_a_stereo_asset_with_its_transcript(
    line: Line, caller_voice: HibariTTS, ears: WhisperEngine
) -> None:
    """Recording on: the media process records caller (left) and agent (right) into one stereo file, a span
    paused over the API is silence, the file becomes the space's asset when the call ends, and its transcript is
    added to the conversation as messages with source `recording`."""
    space = line.space
    numbers = (await line.stack.client.get(space.path("/phone-numbers"), headers=space.admin)).json()["data"]
    [number] = [n for n in numbers if n["e164"] == line.e164]
    patched = await line.stack.client.patch(
        space.path(f"/phone-numbers/{number['id']}"), json={"recording_policy": "always"}, headers=space.admin
    )
    assert patched.status_code == 200
    parameters = await _ring(line)
    call_path = space.path(f"/calls/{(await _state(line, parameters['workflow_id'])).call_id}")
    operator = space.as_role(Role.OPERATOR)
    async with _stream(line, parameters) as phone:
        await phone.start()
        await phone.next_reply()  # the greeting
        await phone.say(await _speech(caller_voice, "What are your opening hours?"), 24000)
        assert _says_hours(await _hear(ears, (await phone.next_reply()).pcm8k()))
        paused = await line.stack.client.post(f"{call_path}/recording/pause", headers=operator)
        assert paused.status_code == 200 and paused.json()["recording_status"] == "paused"
        await phone.say(await _speech(caller_voice, "My card number is four one one one."), 24000)
        await asyncio.sleep(1.0)
        resumed = await line.stack.client.post(f"{call_path}/recording/resume", headers=operator)
        assert resumed.status_code == 200 and resumed.json()["recording_status"] == "recording"
        await asyncio.sleep(1.0)
        await phone.stop()

    async def stored() -> dict[str, Any] | None:
        rows = (await line.stack.client.get(space.path("/recordings"), headers=space.viewer)).json()["data"]
        return rows[0] if rows and rows[0]["status"] == "stored" else None

    asset = await eventually(stored, within=60)
    assert asset["channel_layout"] == "stereo:caller,agent" and asset["paused_spans"]
    content = await line.stack.client.get(space.path(f"/recordings/{asset['id']}/content"), headers=space.viewer)
    with wave.open(io.BytesIO(content.content)) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, 8000)
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    caller, agent = samples[:, 0].astype(np.float64), samples[:, 1].astype(np.float64)
    assert np.sqrt(np.mean(caller**2)) > 100 and np.sqrt(np.mean(agent**2)) > 100  # both sides were heard
    start, end = (int(t * 8000) for t in asset["paused_spans"][0])
    assert end - start > 4000 and not samples[start:end].any()  # the secret is silence, on both channels
    assert _says_hours(await _hear(ears, samples[:, 1].copy()))

    async def transcribed() -> list[dict[str, Any]] | None:
        path = space.path(f"/conversations/{asset['conversation_id']}/messages")
        messages = (await line.stack.client.get(path, headers=space.viewer)).json()["data"]
        from_recording = [m for m in messages if m["source"] == "recording"]
        return from_recording or None

    transcript = await eventually(transcribed, within=120)
    caller_words = " ".join(m["text"].lower() for m in transcript if m["role"] == "caller")
    assert "opening hours" in caller_words and "four one one one" not in caller_words
    events = [e.event for e in (await _state(line, parameters["workflow_id"])).timeline]
    for expected in ("recording_started", "recording_paused", "recording_resumed", "recording_stored"):
        assert expected in events, events
