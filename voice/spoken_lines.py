"""Lines an agent says word for word on every call (the re-attach line), synthesised once per process and voice.

A caller whose media process died waits in silence until the new agent speaks; synthesising the same line again
on a machine that is busy taking calls over adds to that silence for nothing. The media process synthesises the
default voice's line while it warms up; other voices on their first use.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from livekit import rtc

from voice.speech import build_tts

Key = tuple[str, str, str]  # TTS provider, voice, text


class SpokenLines:
    def __init__(self) -> None:
        self._audio: dict[Key, tuple[rtc.AudioFrame, ...]] = {}
        self._locks: dict[Key, asyncio.Lock] = {}

    async def audio(self, provider: str, voice: str, text: str) -> tuple[rtc.AudioFrame, ...]:
        """The line's audio in ``voice`` (synthesised by the first caller, shared afterwards)."""
        key = (provider.strip().lower(), voice, text)
        if (known := self._audio.get(key)) is not None:
            return known
        async with self._locks.setdefault(key, asyncio.Lock()):
            if key not in self._audio:
                engine = build_tts(provider, voice)
                async with engine.synthesize(text) as stream:
                    self._audio[key] = tuple([event.frame async for event in stream])
            return self._audio[key]


async def replay(frames: tuple[rtc.AudioFrame, ...]) -> AsyncIterator[rtc.AudioFrame]:
    """The frames as ``AgentSession.say(audio=...)`` takes them."""
    for frame in frames:
        yield frame
