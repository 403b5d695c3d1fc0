"""Hold on a recorded media-stream call, end to end: the agent neither hears nor answers the caller on hold, and
the recording follows the space's policy: by default the hold is silence in the file (a paused span, marked on the
timeline as a pause is); with ``record_hold`` the caller's words on hold are in it."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from models.enums import Role
from tests.support.stack import eventually
from tests.voice import test_media_stream as media
from tests.voice.test_media_stream import Line, _hear, _ring, _says_hours, _speech, _stream
from tests.voice.test_recording_consent import _channels, _ended, _segment, _stored
from voice.speech import HibariTTS
from voice.speech.whisper_engine import WhisperEngine

line = media.line


async def _recorded_call_with_a_hold(line: Line, voice: HibariTTS, ears: WhisperEngine, record_hold: bool) -> Any:
    space, client = line.space, line.stack.client
    assert (await client.patch(space.path(), json={"record_hold": record_hold}, headers=space.owner)).is_success
    numbers = (await client.get(space.path("/phone-numbers"), headers=space.admin)).json()["data"]
    [number] = [n for n in numbers if n["e164"] == line.e164]
    policy = {"recording_policy": "always"}
    assert (
        await client.patch(space.path(f"/phone-numbers/{number['id']}"), json=policy, headers=space.admin)
    ).is_success
    parameters = await _ring(line)
    call_path = space.path(f"/calls/{(await media._state(line, parameters['workflow_id'])).call_id}")
    operator = space.as_role(Role.OPERATOR)
    secret = await _speech(voice, "My card number is four one one one.")
    question = await _speech(voice, "What are your opening hours?")
    async with _stream(line, parameters) as phone:
        await phone.start()
        await _segment(phone, 0)  # the greeting
        held = await client.post(f"{call_path}/hold", headers=operator)
        assert held.status_code == 200, held.text
        assert held.json()["state"] == "hold"
        assert held.json()["recording_status"] == ("recording" if record_hold else "paused")
        await phone.say(secret, 24000)
        await phone.say(question, 24000)  # nobody answers on hold
        await asyncio.sleep(2.0)
        assert len(phone.segments) == 1, "the agent answered a caller on hold"
        resumed = await client.post(f"{call_path}/resume", headers=operator)
        assert resumed.status_code == 200 and resumed.json()["recording_status"] == "recording", resumed.text
        await phone.say(question, 24000)
        assert _says_hours(await _hear(ears, (await _segment(phone, 1)).pcm8k()))  # back in the conversation
        await asyncio.sleep(0.5)
        await phone.stop()
    final = await _ended(line, parameters["workflow_id"])
    asset = await _stored(line)
    samples = await _channels(line, asset["id"])
    caller = await _hear(ears, samples[:, 0].copy())
    return final, asset, samples, caller


async def test_hold_pauses_the_recording_by_default(line: Line, caller_voice: HibariTTS, ears: WhisperEngine) -> None:
    final, asset, samples, caller = await _recorded_call_with_a_hold(line, caller_voice, ears, record_hold=False)
    [span] = asset["paused_spans"]
    start, end = (int(t * 8000) for t in span)
    assert end - start > 3 * 8000 and not samples[start:end].any()  # the whole hold is silence, both channels
    assert "card" not in caller and "four one one one" not in caller, caller
    assert "opening hours" in caller, caller  # asked again after the hold: recorded
    notes = [(e.event, e.detail) for e in final.timeline if e.event.startswith("recording_")]
    assert ("recording_paused", "hold") in notes, notes
    resumed = [detail for event, detail in notes if event == "recording_resumed"]
    assert resumed and resumed[0] is not None and resumed[0].endswith("(hold)"), notes
    events = [e.event for e in final.timeline]
    assert events.index("hold") < events.index("recording_resumed") and "resume" in events

    # The recording's transcription, in the call's state as GET call shows it: started, then complete.
    assert final.transcription is not None and final.transcription.asset_id == asset["id"]
    space = line.space

    async def transcribed() -> dict[str, Any] | None:
        detail = (await line.stack.client.get(space.path(f"/calls/{final.call_id}"), headers=space.viewer)).json()
        progress: dict[str, Any] = detail["transcription"]
        assert progress["status"] in ("started", "running", "complete"), progress
        return progress if progress["status"] == "complete" else None

    progress = await eventually(transcribed, within=120)
    assert progress["chunks"] >= 1 and progress["chunks_done"] == progress["chunks"]
    assert progress["messages_written"] > 0


async def test_a_space_that_records_hold_keeps_it_in_the_file(
    line: Line, caller_voice: HibariTTS, ears: WhisperEngine
) -> None:
    final, asset, samples, caller = await _recorded_call_with_a_hold(line, caller_voice, ears, record_hold=True)
    assert asset["paused_spans"] == []
    assert "card" in caller, caller  # said on hold, recorded
    assert np.sqrt(np.mean(samples[:, 0].astype(np.float64) ** 2)) > 100
    assert "recording_paused" not in [e.event for e in final.timeline]
