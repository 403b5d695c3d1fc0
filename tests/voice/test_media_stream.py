"""A phone call over a Twilio media stream, end to end, with real audio through the real agent pipeline:
the caller's question is synthesised speech sent as μ-law frames; the agent's spoken answer is transcribed."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from temporalio.testing import WorkflowEnvironment
from twilio.request_validator import RequestValidator

from models import calls as c
from tests.api.resources import create
from tests.conftest import Platform, SpaceKeys, unique_e164
from tests.support.media_stream_client import TwilioMediaStream
from tests.support.stack import eventually, running_stack, serve_http, temporal_client
from tests.twilio_standin import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TwilioStandIn
from voice.media_stream.extension import MediaStreamExtension
from voice.speech import HibariTTS
from voice.speech.audio import int16_to_float, resample_int16
from voice.speech.whisper_engine import WhisperEngine, get_whisper_engine

PUBLIC = "https://telephony.example.com"
STREAM_URL = "wss://telephony.example.com/media/twilio"
HOURS = "We are open from nine in the morning to five in the afternoon, Monday to Friday."


@dataclass
class Line:
    stack: Platform
    space: SpaceKeys
    e164: str
    base_url: str


@pytest.fixture(scope="module")
def caller_voice() -> HibariTTS:
    tts = HibariTTS(voice="heart", seed=0)
    tts.prewarm()
    return tts


@pytest.fixture(scope="module")
def ears() -> WhisperEngine:
    return get_whisper_engine()


@pytest.fixture
async def line(temporal_env: WorkflowEnvironment, tmp_path: Path, twilio_standin: TwilioStandIn) -> AsyncIterator[Line]:
    async with running_stack(
        temporal_env, tmp_path, extensions=[MediaStreamExtension()], twilio_api_base_url=twilio_standin.url
    ) as stack:
        assert stack.app is not None
        await stack.app.state.voice.warm_up()
        space = await stack.new_space()
        account = await create(
            stack.client,
            space,
            "carrier-accounts",
            {"name": "twilio", "account_sid": TEST_ACCOUNT_SID, "auth_token": TEST_AUTH_TOKEN},
        )
        agent = await create(
            stack.client,
            space,
            "agents",
            {
                "name": "front desk",
                "greeting": "Hello, thanks for calling.",
                "knowledge_base": [{"title": "Opening hours", "content": HOURS}],
                "tts_provider": "local-hibari",
            },
        )
        e164 = unique_e164()
        await create(
            stack.client,
            space,
            "phone-numbers",
            {"e164": e164, "carrier_account_id": account["id"], "agent_id": agent["id"], "media_mode": "stream"},
        )
        async with serve_http(stack.app) as base_url:
            yield Line(stack, space, e164, base_url)


async def _ring(line: Line) -> dict[str, str]:
    """Twilio's voice webhook for a new call; the TwiML names the stream's parameters."""
    stack, e164 = line.stack, line.e164
    params = {"CallSid": "CA" + uuid.uuid4().hex, "AccountSid": TEST_ACCOUNT_SID, "From": "+14155550142", "To": e164}
    signature = RequestValidator(TEST_AUTH_TOKEN).compute_signature(f"{PUBLIC}/webhooks/twilio/voice", params)
    response = await stack.client.post("/webhooks/twilio/voice", data=params, headers={"X-Twilio-Signature": signature})
    stream = ET.fromstring(response.text).find("./Connect/Stream")
    assert stream is not None
    return {str(p.get("name")): str(p.get("value")) for p in stream.findall("Parameter")}


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


async def _state(line: Line, workflow_id: str) -> c.CallStateView:
    handle = temporal_client(line.stack).get_workflow_handle(workflow_id)
    view: c.CallStateView = await handle.query(c.QUERY_GET_STATE, result_type=c.CallStateView)
    return view


async def test_the_agent_answers_a_spoken_question_from_its_knowledge_base(
    line: Line, caller_voice: HibariTTS, ears: WhisperEngine
) -> None:
    parameters = await _ring(line)
    question = caller_voice.synthesize_pcm("What are your opening hours?")
    async with _stream(line, parameters) as phone:
        await phone.start()
        greeting = await phone.next_reply()
        assert "thanks for calling" in _heard(ears, greeting.pcm8k())
        state = await _state(line, parameters["workflow_id"])
        assert state.state.value == "active"  # the agent's first words made the call active

        await phone.say(question, 24000)
        answer = await phone.next_reply()
        heard = _heard(ears, answer.pcm8k())
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

        await good.say(caller_voice.synthesize_pcm("What are your opening hours?"), 24000)
        assert _says_hours(_heard(ears, (await good.next_reply()).pcm8k()))
        await good.stop()


async def _closed(stream: TwilioMediaStream) -> bool:
    return stream.closed is not None
