"""Graceful drain: SIGTERM to a media process carrying two calls, over real carrier media streams and the carrier
stand-in. It refuses new streams at once (the carrier goes to another media process), the call that ends within
the drain limit ends there normally, the one still going at the limit is handed over (the workflow redirects the
carrier's leg to a stream on the other media process, whose agent resumes without a second greeting), neither is
dropped, the timeline records the hand-over, and the drained process exits 0. Both calls are recorded: the moved
call's asset holds what the drained process recorded and what the other one did."""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from models.enums import EndReason, MessageRole
from models.tables import Message
from tests.support.media_processes import (
    Line,
    MediaProcess,
    call_ended,
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

DRAIN_SECONDS = 12  # long enough for the first call to finish on a loaded machine, short enough for a test


@pytest.fixture
async def line(
    temporal_env: WorkflowEnvironment,
    tmp_path: Path,
    twilio_standin: TwilioStandIn,
    media_processes: list[MediaProcess],
) -> AsyncIterator[Line]:
    # The media processes store recordings where the API serves them from (one machine, one store).
    drain = {"TELEPHONY_MEDIA_DRAIN_SECONDS": str(DRAIN_SECONDS), "TELEPHONY_STORAGE_DIR": str(tmp_path / "storage")}
    async with media_line(temporal_env, tmp_path, twilio_standin, media_processes, extra_env=drain) as line:
        yield line


@pytest.mark.slow
async def test_sigterm_during_two_calls_finishes_one_and_moves_the_other(line: Line) -> None:
    caller_voice, ears = HibariTTS(voice="heart"), get_whisper_engine()
    calls = CallClient(line.stack.app.state.temporal._client, line.stack.settings.task_queue)  # type: ignore[union-attr]
    draining, spare = line.media
    hours, parking = (
        await speech(caller_voice, "What are your opening hours?"),
        await speech(caller_voice, "Where can I park?"),
    )
    client, space = line.stack.client, line.space
    [number] = (await client.get(space.path("/phone-numbers"), headers=space.admin)).json()["data"]
    policy = {"recording_policy": "always"}
    patched = await client.patch(space.path(f"/phone-numbers/{number['id']}"), json=policy, headers=space.admin)
    assert patched.is_success, patched.text
    first_record, first_answer = await line.carrier.incoming_call(line.e164, "+14155550142")
    second_record, second_answer = await line.carrier.incoming_call(line.e164, "+14155550143")
    first, second = stream_parameters(first_answer.text), stream_parameters(second_answer.text)
    first_call = calls.call(first["workflow_id"], space_id=line.space.id)
    second_call = calls.call(second["workflow_id"], space_id=line.space.id)

    async with contextlib.AsyncExitStack() as streams:
        # Each stream says start as soon as it is open (its line sends frames from then on).
        short = await streams.enter_async_context(stream_to(draining, first))
        await short.start()
        long = await streams.enter_async_context(stream_to(draining, second))
        await long.start()
        greetings = await asyncio.gather(short.next_reply(within=60), long.next_reply(within=60))
        for greeting in greetings:
            assert "thanks for calling" in await hear(ears, greeting.pcm8k())
        terminated_at = time.monotonic()
        draining.terminate()

        # New streams are refused at once (the carrier opens them on another media process); health says so.
        async def refused() -> bool | None:
            try:
                async with connect(draining.ws_url, open_timeout=10):
                    return None  # not draining yet: the signal is handled on the process's loop
            except InvalidStatus as exc:
                return exc.response.status_code == 403 or None

        assert await eventually(refused, within=10)
        async with httpx.AsyncClient(timeout=5) as http:
            assert (await http.get(draining.health_url)).status_code == 503

        # The first call goes on during the drain and ends there, by the caller.
        await short.say(hours, 24000)
        heard_hours = await hear(ears, (await short.next_reply(within=60)).pcm8k())
        assert "nine" in heard_hours or "9" in heard_hours, heard_hours
        await short.stop()
        assert time.monotonic() - terminated_at < DRAIN_SECONDS, "the first call took longer than the drain limit"

        # The second is still going at the limit: the workflow moves it through the carrier's REST API.
        async def redirected() -> str | None:
            redirects = line.carrier.calls[second_record.sid].redirects
            return redirects[-1].get("Twiml") if redirects else None

        twiml = await eventually(redirected, within=DRAIN_SECONDS + 40)
        assert time.monotonic() - terminated_at >= DRAIN_SECONDS - 1
        assert not line.carrier.calls[first_record.sid].redirects
        await long.stop()  # the carrier ends the old stream as it follows the new TwiML

    moved = stream_parameters(twiml)
    assert moved["workflow_id"] == second["workflow_id"] and moved["token"] != second["token"]
    async with stream_to(spare, moved) as phone:
        await phone.start()
        resumed = await hear(ears, (await phone.next_reply(within=60)).pcm8k())
        assert "where were we" in resumed and "thanks for calling" not in resumed, resumed
        await phone.say(parking, 24000)
        assert "park" in await hear(ears, (await phone.next_reply(within=60)).pcm8k())
        await phone.stop()

    # The drained process exits 0 once its handed-over stream is closed.
    assert await asyncio.to_thread(draining.process.wait, 60) == 0, draining.output()[-3000:]

    short_view, long_view = await asyncio.gather(call_ended(first_call), call_ended(second_call))
    short_events = [e.event for e in short_view.timeline]
    assert "media_lost" not in short_events and "media_handed_over" not in short_events, short_events
    assert short_view.end_reason is EndReason.COMPLETED and long_view.end_reason is EndReason.COMPLETED
    long_events = [e.event for e in long_view.timeline]
    assert "media_lost" not in long_events, long_events
    assert long_events.count("media_attached") == 1 and long_events.count("agent_reattached") == 1, long_events
    assert (
        long_events.index("media_handed_over")
        < long_events.index("media_reconnecting")
        < long_events.index("agent_reattached")
    ), long_events
    async with line.stack.sessions() as session:
        said = (
            await session.scalars(select(Message).where(Message.conversation_id == long_view.conversation_id))
        ).all()
    agent_lines = [m.text for m in said if m.role is MessageRole.AGENT]
    assert sum("thanks for calling" in t.lower() for t in agent_lines) == 1  # one greeting in the whole call

    async def stored() -> dict[str, dict[str, Any]] | None:
        rows = (await client.get(space.path("/recordings"), headers=space.viewer)).json()["data"]
        done = {row["call_id"]: row for row in rows if row["status"] == "stored"}
        return done if len(done) == 2 else None

    assets = await eventually(stored, within=60)
    assert set(assets) == {short_view.call_id, long_view.call_id}
    moved = assets[long_view.call_id]
    content = await client.get(space.path(f"/recordings/{moved['id']}/content"), headers=space.viewer)
    with wave.open(io.BytesIO(content.content)) as wav:
        agent = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)[:, 1].copy()
    recorded = await hear(ears, agent)
    assert "thanks for calling" in recorded and "park" in recorded, recorded  # drained part, then the other
