"""The agent comes back: kill -9 of the media-stream process carrying a call, over a real carrier media stream
and the carrier stand-in. The workflow notices (the call's carry_media heartbeat stops), redirects the live
carrier leg to a new stream through the carrier's REST API, a fresh agent on another media process picks up
(no second greeting) with the conversation so far, and the call ends ENDED with one timeline. The call is recorded:
the part the killed process wrote and the part of the new one are one asset, the move silence between them."""

from __future__ import annotations

import asyncio
import io
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from models.calls import CallStateView
from models.enums import CallState, MessageRole
from models.tables import Message
from tests.support.media_processes import (
    Line,
    MediaProcess,
    hear,
    media_line,
    speech,
    stream_parameters,
    stream_to,
)
from tests.support.stack import eventually
from tests.twilio_standin import TwilioStandIn
from voice.speech import HibariTTS
from voice.speech.whisper_engine import get_whisper_engine
from workflows.call_client import CallClient


@pytest.fixture
async def line(
    temporal_env: WorkflowEnvironment,
    tmp_path: Path,
    twilio_standin: TwilioStandIn,
    media_processes: list[MediaProcess],
) -> AsyncIterator[Line]:
    # The media processes store recordings where the API serves them from (one machine, one store).
    store = {"TELEPHONY_STORAGE_DIR": str(tmp_path / "storage")}
    async with media_line(temporal_env, tmp_path, twilio_standin, media_processes, extra_env=store) as line:
        yield line


@pytest.mark.slow
async def test_kill_9_of_the_media_process_mid_call_moves_the_call_to_another(line: Line) -> None:
    caller_voice, ears = HibariTTS(voice="heart"), get_whisper_engine()
    calls = CallClient(line.stack.app.state.temporal._client, line.stack.settings.task_queue)  # type: ignore[union-attr]
    client, space = line.stack.client, line.space
    [number] = (await client.get(space.path("/phone-numbers"), headers=space.admin)).json()["data"]
    policy = {"recording_policy": "always"}
    assert (
        await client.patch(space.path(f"/phone-numbers/{number['id']}"), json=policy, headers=space.admin)
    ).is_success
    record, answer = await line.carrier.incoming_call(line.e164, "+14155550142")
    first = stream_parameters(answer.text)
    call = calls.call(first["workflow_id"], space_id=line.space.id)

    async with stream_to(line.media[0], first) as phone:
        await phone.start()
        assert "thanks for calling" in await hear(ears, (await phone.next_reply(within=60)).pcm8k())
        await phone.say(await speech(caller_voice, "What are your opening hours?"), 24000)
        heard = await hear(ears, (await phone.next_reply(within=60)).pcm8k())
        assert "nine" in heard or "9" in heard, heard
        killed_at = time.monotonic()
        line.media[0].kill9()

        async def redirected() -> str | None:
            redirects = line.carrier.calls[record.sid].redirects
            return redirects[-1].get("Twiml") if redirects else None

        twiml = await eventually(redirected, within=30)
    second = stream_parameters(twiml)
    assert second["workflow_id"] == first["workflow_id"] and second["token"] != first["token"]
    async with stream_to(line.media[1], second) as phone:
        await phone.start()
        resumed = await hear(ears, (await phone.next_reply(within=60)).pcm8k())
        back_after = time.monotonic() - killed_at
        assert "where were we" in resumed and "thanks for calling" not in resumed, resumed
        await phone.say(await speech(caller_voice, "Where can I park?"), 24000)
        assert "park" in await hear(ears, (await phone.next_reply(within=60)).pcm8k())
        await phone.stop()

    async def ended() -> CallStateView | None:
        view = await call.state()
        return view if view.state is CallState.ENDED else None

    view = await eventually(ended, within=30)
    events = [e.event for e in view.timeline]
    assert events.count("media_attached") == 1 and events.count("agent_reattached") == 1, events
    assert events.index("media_lost") < events.index("media_reconnecting") < events.index("agent_reattached")
    async with line.stack.sessions() as session:
        said = (await session.scalars(select(Message).where(Message.conversation_id == view.conversation_id))).all()
    agent_lines = [m.text for m in said if m.role is MessageRole.AGENT]
    assert sum("thanks for calling" in t.lower() for t in agent_lines) == 1  # one greeting in the whole call
    print(f"re-attach: caller heard the agent again {back_after:.1f} s after the kill")

    # One recording of the whole call: what the killed process recorded, then the new process's part.
    async def stored() -> dict[str, Any] | None:
        rows = (await client.get(space.path("/recordings"), headers=space.viewer)).json()["data"]
        return rows[0] if rows and rows[0]["status"] == "stored" else None

    asset = await eventually(stored, within=60)
    content = await client.get(space.path(f"/recordings/{asset['id']}/content"), headers=space.viewer)
    with wave.open(io.BytesIO(content.content)) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, 8000)
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    caller, agent = await asyncio.gather(hear(ears, samples[:, 0].copy()), hear(ears, samples[:, 1].copy()))
    assert "opening hours" in caller and "park" in caller, caller  # before the kill and after it
    assert "thanks for calling" in agent and "park" in agent, agent
    events = [e.event for e in (await call.state()).timeline]
    assert "recording_stored" in events and "recording_lost" not in events, events
