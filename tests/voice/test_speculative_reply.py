"""The speculative reply over a real media stream: the agent prepares its answer while the caller pauses, plays it
when the turn ends on that transcript, and throws it away when the caller goes on."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from models import calls as c
from tests.support.stack import eventually
from tests.voice.test_media_stream import (  # noqa: F401 (the line fixture)
    Line,
    _hear,
    _ring,
    _says_hours,
    _speech,
    _state,
    _stream,
    line,
)
from voice import call_setup
from voice.speech import HibariTTS
from voice.speech.whisper_engine import WhisperEngine

# A caller's pause shorter than the turn's end-of-speech silence: long enough here for the pause's transcript (and the
# reply made from it) to be ready on a loaded machine before the caller goes on.
PAUSE = 0.8
TURN_SILENCE = 1.6


@pytest.fixture
def long_turns(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Turns end after TURN_SILENCE, so a PAUSE within one is a pause and not a turn, whatever the machine's load;
    livekit's debug log (what the session did with the preflights) is captured."""
    monkeypatch.setattr(call_setup, "END_OF_SPEECH_SILENCE", TURN_SILENCE)
    caplog.set_level(logging.DEBUG, logger="livekit.agents")
    return caplog


async def _with_a_pause(voice: HibariTTS, first: str, then: str) -> np.ndarray:
    gap = np.zeros(int(PAUSE * 24000), dtype=np.int16)
    return np.concatenate([await _speech(voice, first), gap, await _speech(voice, then)])


def _logged(caplog: pytest.LogCaptureFixture, message: str) -> int:
    return sum(1 for r in caplog.records if r.name.startswith("livekit.agents") and r.getMessage() == message)


async def test_a_reply_made_during_a_pause_is_played_only_for_the_turn_it_answers(
    line: Line,  # noqa: F811
    caller_voice: HibariTTS,
    ears: WhisperEngine,
    long_turns: pytest.LogCaptureFixture,
) -> None:
    caplog = long_turns
    parameters = await _ring(line)
    taken_back = await _with_a_pause(caller_voice, "Where can I park?", "No, sorry, what are your opening hours?")
    async with _stream(line, parameters) as phone:
        await phone.start()
        await phone.next_reply()  # the greeting

        # One question: its reply is prepared in the silence and adopted when the turn ends.
        asked = len(phone.segments)
        await phone.say(await _speech(caller_voice, "What are your opening hours?"), 24000)
        assert _says_hours(await _hear(ears, (await phone.next_reply(after=asked)).pcm8k()))
        assert _logged(caplog, "using preemptive generation") == 1

        # A question the caller takes back after a pause: the parking answer prepared during the pause is never heard.
        preflights = _logged(caplog, "received user preflight transcript")
        asked = len(phone.segments)
        await phone.say(taken_back, 24000)
        reply = await phone.next_reply(after=asked)
        heard = await _hear(ears, reply.pcm8k())
        assert _says_hours(heard) and "garage" not in heard, heard
        assert phone.segments[asked:] == [reply] and phone.clears == 0
        assert _logged(caplog, "received user preflight transcript") >= preflights + 2  # each half was one
        await phone.stop()

    state = await _state(line, parameters["workflow_id"])
    conversation = (
        await line.stack.client.get(
            line.space.path(f"/conversations/{state.conversation_id}/messages"), headers=line.space.viewer
        )
    ).json()["data"]
    said = [m["text"].lower() for m in conversation if m["role"] == "caller"]
    assert any("park" in text and "opening hours" in text for text in said), said  # one turn, both halves
    agent = [m["text"].lower() for m in conversation if m["role"] == "agent"]
    assert not any("garage" in text for text in agent), agent


async def test_a_tool_in_a_speculative_reply_runs_only_once_the_turn_is_over(
    line: Line,  # noqa: F811
    caller_voice: HibariTTS,
    long_turns: pytest.LogCaptureFixture,
) -> None:
    """The reply prepared during the pause would transfer the call; it must not act before the caller is done."""
    caplog = long_turns
    parameters = await _ring(line)
    asked = await _with_a_pause(caller_voice, "I would like to speak to a person.", "About my order, please.")
    async with _stream(line, parameters) as phone:
        await phone.start()
        await phone.next_reply()
        await phone.say(asked, 24000)
        assert _logged(caplog, "received user preflight transcript") >= 1  # the pause's reply was prepared...
        assert not line.carrier.requests_for("update_call")  # ...and did nothing while the caller spoke on

        async def transferred() -> c.CallStateView | None:
            view = await _state(line, parameters["workflow_id"])
            return view if view.state.value == "ended" else None

        final = await eventually(transferred, within=30)
    assert final.end_reason is not None and final.end_reason.value == "transferred"
    [redirect] = line.carrier.requests_for("update_call")  # once
    assert "<Number>+14155550111</Number>" in redirect.form["Twiml"]
