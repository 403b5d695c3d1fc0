"""Frames a media stream refuses, over real WebSockets against the real router on a real server: a binary frame
(1003), an oversized text frame (1009) and a stream silent before ``start`` (1008) are each closed with a reason,
while the other streams carry on. Hypothesis drives the frame checks and the message parser."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.testing import WorkflowEnvironment
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from api.temporal import TemporalGateway
from tests.conftest import Platform, serve_api
from tests.support.stack import serve_http
from voice.media_stream import protocol
from voice.media_stream.frames import FrameLimits, FrameRejected, text_of
from voice.media_stream.router import router
from voice.runtime import VoiceRuntime

START_TIMEOUT = 1.0
CONNECTED = json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})


class _StreamsOnly:
    """The media-stream router with its runtime, without loading speech models (no stream here reaches them)."""

    router = router

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        state = app.state
        state.voice = VoiceRuntime(state.settings, state.sessions, await state.temporal.calls(), state.secret_box)
        yield


@pytest.fixture
async def stream_url(api: Platform, temporal_env: WorkflowEnvironment) -> AsyncIterator[str]:
    settings = api.settings.model_copy(update={"media_stream_start_timeout": START_TIMEOUT})
    platform = Platform(settings, api.sessions, api.admin_key)
    async with serve_api(platform, TemporalGateway(settings, temporal_env.client), [_StreamsOnly()]) as served:
        assert served.app is not None
        async with serve_http(served.app) as base_url:
            yield base_url.replace("http://", "ws://") + "/media/twilio"


async def _closed(ws: ClientConnection, within: float = 10.0) -> tuple[int, str]:
    with suppress(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), within)
    await asyncio.wait_for(ws.wait_closed(), within)
    assert ws.close_code is not None
    return ws.close_code, ws.close_reason or ""


async def test_bad_frames_close_their_stream_with_a_reason_and_others_carry_on(stream_url: str) -> None:
    async with connect(stream_url) as bystander:
        await bystander.send(CONNECTED)
        async with connect(stream_url) as binary:
            await binary.send(CONNECTED)
            await binary.send(b"\x00\x01 not json")
            assert await _closed(binary) == (1003, "binary frames are not accepted: send JSON text")
        async with connect(stream_url) as huge:
            await huge.send(json.dumps({"event": "media", "streamSid": "MZ1", "media": {"payload": "A" * 100_000}}))
            assert await _closed(huge) == (1009, "text frame larger than 65536 bytes")
        # The bystander was not touched: it is still served, and answered on its own (unsigned, so refused).
        start = {
            "event": "start",
            "streamSid": "MZ2",
            "start": {
                "streamSid": "MZ2",
                "callSid": "CA2",
                "accountSid": "AC2",
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000},
            },
        }
        await bystander.send(json.dumps(start))
        assert await _closed(bystander) == (1008, "invalid X-Twilio-Signature")


async def test_a_stream_without_start_is_closed_after_the_timeout(stream_url: str) -> None:
    async with connect(stream_url) as silent, connect(stream_url) as chatty:
        await chatty.send(CONNECTED)
        loop = asyncio.get_running_loop()
        opened = loop.time()
        code, reason = await _closed(silent)
        assert (code, reason) == (1008, f"no start within {START_TIMEOUT:g} s")
        assert loop.time() - opened >= START_TIMEOUT * 0.9
        # Messages other than start do not reset the clock.
        assert await _closed(chatty) == (1008, f"no start within {START_TIMEOUT:g} s")


LIMITS = FrameLimits(max_text_bytes=1024, start_timeout=1.0)
PROPERTIES = settings(max_examples=300, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
asgi_messages = st.one_of(
    st.builds(lambda t: {"type": "websocket.receive", "text": t}, st.text(max_size=1500)),
    st.builds(lambda b: {"type": "websocket.receive", "bytes": b}, st.binary(max_size=64)),
    st.builds(lambda c: {"type": "websocket.disconnect", "code": c}, st.integers(1000, 4999)),
)


@PROPERTIES
@given(message=asgi_messages)
def test_every_frame_is_text_within_bounds_a_disconnect_or_refused_with_a_close_code(
    message: dict[str, object],
) -> None:
    try:
        text = text_of(message, LIMITS)
    except FrameRejected as exc:
        assert exc.code in (1003, 1009) and exc.reason and len(exc.reason.encode()) <= 123
    else:
        if message["type"] == "websocket.disconnect":
            assert text is None
        else:
            assert text is not None and text == message["text"] and len(text.encode()) <= LIMITS.max_text_bytes


json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
)
event_messages = st.builds(
    lambda event, rest: json.dumps({"event": event, **rest}),
    st.sampled_from(["connected", "start", "media", "dtmf", "mark", "stop", "other"]),
    st.dictionaries(st.sampled_from(["streamSid", "start", "media", "dtmf", "mark", "sequenceNumber"]), json_values),
)


@PROPERTIES
@given(text=st.text(max_size=200) | json_values.map(json.dumps) | event_messages)
def test_any_text_parses_to_a_message_or_a_protocol_error(text: str) -> None:
    try:
        message = protocol.parse(text)
    except protocol.ProtocolError as exc:
        assert str(exc)
    else:
        assert message.event in ("connected", "start", "media", "dtmf", "mark", "stop")
