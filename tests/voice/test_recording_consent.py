"""Recording consent over a real media stream, end to end: the space's announcement is real speech played before
the greeting; the recorder starts only once it was played (announce) or the caller consented (require); with no
consent nothing is recorded and the call goes on."""

from __future__ import annotations

import asyncio
import io
import time
import wave
from typing import Any

import numpy as np

from models import calls as c
from models.consent import ConsentOutcome
from models.enums import EndReason
from tests.support.media_stream_client import AgentSpeech, TwilioMediaStream
from tests.support.stack import eventually, temporal_client
from tests.voice import test_media_stream as media
from tests.voice.test_media_stream import Line, _hear, _ring, _says_hours, _speech, _stream
from voice.speech import HibariTTS
from voice.speech.whisper_engine import WhisperEngine

# The media-stream call fixture: a space whose number streams its calls to the app (voice and ears: conftest).
line = media.line


async def _configure(line: Line, consent: str, announcement: str | None = None) -> None:
    space, client = line.space, line.stack.client
    body: dict[str, Any] = {"recording_consent": consent}
    if announcement is not None:
        body["recording_announcement"] = announcement
    patched = await client.patch(space.path(), json=body, headers=space.owner)
    assert patched.status_code == 200, patched.text
    assert patched.json()["recording_consent"] == consent
    numbers = (await client.get(space.path("/phone-numbers"), headers=space.admin)).json()["data"]
    [number] = [n for n in numbers if n["e164"] == line.e164]
    patched = await client.patch(
        space.path(f"/phone-numbers/{number['id']}"), json={"recording_policy": "always"}, headers=space.admin
    )
    assert patched.status_code == 200


async def _segment(phone: TwilioMediaStream, index: int, within: float = 45.0) -> AgentSpeech:
    """The agent's ``index``-th reply segment (0: the first thing it said), once played out."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if len(phone.segments) > index and phone.segments[index].mark is not None:
            return phone.segments[index]
        await asyncio.sleep(0.05)
    raise TimeoutError(f"no agent segment {index} in time")


async def _stored(line: Line) -> dict[str, Any]:
    space = line.space

    async def stored() -> dict[str, Any] | None:
        rows = (await line.stack.client.get(space.path("/recordings"), headers=space.viewer)).json()["data"]
        return rows[0] if rows and rows[0]["status"] == "stored" else None

    return await eventually(stored, within=60)


async def _channels(line: Line, asset_id: str) -> np.ndarray:
    space = line.space
    content = await line.stack.client.get(space.path(f"/recordings/{asset_id}/content"), headers=space.viewer)
    with wave.open(io.BytesIO(content.content)) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, 8000)
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)


async def _ended(line: Line, workflow_id: str) -> c.CallStateView:
    """The call's final state, once its workflow has finished (recording stored, transcription started)."""
    await temporal_client(line.stack).get_workflow_handle(workflow_id).result()
    return await media._state(line, workflow_id)


async def test_announced_recording_begins_after_the_announcement(
    line: Line, caller_voice: HibariTTS, ears: WhisperEngine
) -> None:
    await _configure(line, "announce", "Please note that this call is recorded.")
    parameters = await _ring(line)
    async with _stream(line, parameters) as phone:
        await phone.start()
        announcement = await _hear(ears, (await _segment(phone, 0)).pcm8k())
        assert "recorded" in announcement, announcement
        assert "thanks for calling" in await _hear(ears, (await _segment(phone, 1)).pcm8k())
        await phone.say(await _speech(caller_voice, "What are your opening hours?"), 24000)
        assert _says_hours(await _hear(ears, (await _segment(phone, 2)).pcm8k()))
        await asyncio.sleep(0.5)
        await phone.stop()

    final = await _ended(line, parameters["workflow_id"])
    assert final.recording_consent is not None and final.recording_consent.outcome is ConsentOutcome.ANNOUNCED
    events = [e.event for e in final.timeline]
    assert events.index("recording_consent") < events.index("recording_started") < events.index("recording_stored")
    asset = await _stored(line)
    samples = await _channels(line, asset["id"])
    agent = await _hear(ears, samples[:, 1].copy())
    assert "thanks for calling" in agent and _says_hours(agent), agent  # the greeting and the answer are in it
    assert "recorded" not in agent and "please note" not in agent, agent  # the announcement is not


async def test_required_consent_given_by_pressing_1_records_the_call(
    line: Line, caller_voice: HibariTTS, ears: WhisperEngine
) -> None:
    await _configure(line, "require")
    parameters = await _ring(line)
    async with _stream(line, parameters) as phone:
        await phone.start()
        prompt = await _hear(ears, (await _segment(phone, 0)).pcm8k())
        assert "press 1" in prompt or "press one" in prompt, prompt
        await phone.dtmf("1")
        assert "thanks for calling" in await _hear(ears, (await _segment(phone, 1)).pcm8k())
        await phone.say(await _speech(caller_voice, "What are your opening hours?"), 24000)
        assert _says_hours(await _hear(ears, (await _segment(phone, 2)).pcm8k()))
        await asyncio.sleep(0.5)
        await phone.stop()

    final = await _ended(line, parameters["workflow_id"])
    consent = final.recording_consent
    assert consent is not None and consent.outcome is ConsentOutcome.GIVEN and consent.by == "dtmf"
    asset = await _stored(line)
    samples = await _channels(line, asset["id"])
    caller, agent = samples[:, 0], samples[:, 1].copy()
    assert np.sqrt(np.mean(caller.astype(np.float64) ** 2)) > 100  # the caller's question is in it
    heard = await _hear(ears, agent)
    assert _says_hours(heard) and "press" not in heard, heard


async def test_without_consent_the_call_goes_on_and_is_never_recorded(
    line: Line, caller_voice: HibariTTS, ears: WhisperEngine
) -> None:
    await _configure(line, "require")
    parameters = await _ring(line)
    async with _stream(line, parameters) as phone:
        await phone.start()
        await _segment(phone, 0)  # the question; the caller says nothing and presses nothing
        greeting = await _segment(phone, 1, within=60)
        assert "thanks for calling" in await _hear(ears, greeting.pcm8k())
        await phone.say(await _speech(caller_voice, "What are your opening hours?"), 24000)
        assert _says_hours(await _hear(ears, (await _segment(phone, 2)).pcm8k()))  # the call goes on
        await phone.stop()

    final = await _ended(line, parameters["workflow_id"])
    assert final.end_reason is EndReason.COMPLETED
    consent = final.recording_consent
    assert consent is not None and consent.outcome is ConsentOutcome.REFUSED and consent.by == "timeout"
    assert final.recording_status == "declined"
    events = [e.event for e in final.timeline]
    assert "recording_consent" in events and "recording_started" not in events and "recording_lost" not in events
    space = line.space
    rows = (await line.stack.client.get(space.path("/recordings"), headers=space.viewer)).json()["data"]
    assert rows == []
    recordings = line.stack.settings.data_dir / "recordings" / "streams"
    assert not recordings.exists() or not list(recordings.glob("*.wav"))  # no file was ever written


async def test_required_consent_given_by_saying_yes_is_not_answered_by_the_agent(
    line: Line, caller_voice: HibariTTS, ears: WhisperEngine
) -> None:
    await _configure(line, "require")
    parameters = await _ring(line)
    async with _stream(line, parameters) as phone:
        await phone.start()
        await _segment(phone, 0)  # the question
        await phone.say(await _speech(caller_voice, "Yes, that's fine."), 24000)
        greeting = await _hear(ears, (await _segment(phone, 1)).pcm8k())
        assert "thanks for calling" in greeting, greeting  # the answer went to the consent, not to the agent
        await asyncio.sleep(0.5)
        await phone.stop()

    final = await _ended(line, parameters["workflow_id"])
    consent = final.recording_consent
    assert consent is not None and consent.outcome is ConsentOutcome.GIVEN and consent.by == "speech"
    asset = await _stored(line)
    heard = await _hear(ears, (await _channels(line, asset["id"]))[:, 1].copy())
    assert "thanks for calling" in heard and "press" not in heard, heard
