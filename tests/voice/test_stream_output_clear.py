"""A prompt cut off by a key or a barge-in (``clear``) while its audio was still being produced: what the output
plays next is a new segment that gets its own mark. It once joined the cleared segment and was never marked, so
the caller heard the agent's greeting after a menu key but the call never saw it played (a flaky flow test)."""

from __future__ import annotations

import asyncio
import json

import numpy as np
from livekit import rtc

from voice.media_stream.audio_io import StreamAudioOutput


def _frame() -> rtc.AudioFrame:
    pcm = (np.sin(np.arange(160) / 5) * 8000).astype("<i2").tobytes()
    return rtc.AudioFrame(pcm, sample_rate=8000, num_channels=1, samples_per_channel=160)


async def test_audio_after_a_clear_mid_segment_is_a_new_marked_segment() -> None:
    sent: list[dict[str, object]] = []

    async def send(message: str) -> None:
        sent.append(json.loads(message))

    output = StreamAudioOutput("MZ1", send)
    await output.capture_frame(_frame())  # the prompt is still being produced...
    output.clear_buffer()  # ...when the caller presses a key
    await output.capture_frame(_frame())  # the agent's greeting
    output.flush()
    await output.aclose()
    await asyncio.sleep(0)
    events = [m["event"] for m in sent]
    assert events == ["media", "clear", "media", "mark"], events
    assert sent[-1]["mark"] == {"name": "segment-2"}
