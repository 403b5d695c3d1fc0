"""A flow's prompts on a call's audio output: the text spoken with the flow's voice (the same TTS engines the
agent uses, warm in the process) or an audio asset of the space, cut off by the caller's first key when the
prompt asks for input."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from livekit import rtc
from livekit.agents import tts
from livekit.agents.voice import io

from models.flow_calls import PlayPrompt, PromptPlayed
from voice.flow_audio import PromptAudio
from voice.speech import build_tts

log = logging.getLogger(__name__)


class FlowPrompter:
    def __init__(self, output: io.AudioOutput, audio: PromptAudio | None = None) -> None:
        self._output = output
        self._audio = audio
        self._voices: dict[tuple[str, str], tts.TTS] = {}
        self._interruptible = False
        self._cut = asyncio.Event()
        self._lock = asyncio.Lock()  # one prompt at a time on a call

    def key_pressed(self) -> None:
        """The caller pressed a key: a prompt waiting for input stops at once."""
        if self._interruptible:
            self._cut.set()

    def _voice(self, provider: str, voice: str) -> tts.TTS:
        key = (provider, voice)
        if key not in self._voices:
            self._voices[key] = build_tts(provider, voice)
        return self._voices[key]

    async def _frames(self, request: PlayPrompt) -> AsyncIterator[rtc.AudioFrame]:
        if request.asset_id is None:
            async with self._voice(request.tts_provider, request.voice).synthesize(request.text) as stream:
                async for audio in stream:
                    yield audio.frame
            return
        if self._audio is None or request.space_id is None:
            raise RuntimeError("this process plays no audio assets")
        pcm, rate = await self._audio.load(request.space_id, request.asset_id)
        for start in range(0, len(pcm), rate // 50):  # 20 ms frames, as TTS engines send them
            chunk = pcm[start : start + rate // 50]
            yield rtc.AudioFrame(chunk.tobytes(), rate, 1, len(chunk))

    async def play(self, request: PlayPrompt) -> PromptPlayed:
        async with self._lock:
            self._cut.clear()
            self._interruptible = request.interruptible
            sent = 0.0

            async def speak() -> None:
                nonlocal sent
                async for frame in self._frames(request):
                    await self._output.capture_frame(frame)
                    sent += frame.duration
                self._output.flush()
                await self._output.wait_for_playout()

            speaking = asyncio.create_task(speak())
            cut = asyncio.create_task(self._cut.wait())
            try:
                await asyncio.wait({speaking, cut}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                self._interruptible = False
                cut.cancel()
                if not speaking.done():
                    speaking.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await speaking
                    self._output.clear_buffer()  # stop what the caller has not heard yet
                    self._output.flush()
            if speaking.cancelled():
                return PromptPlayed(interrupted=True, seconds=sent)
            speaking.result()
            return PromptPlayed(interrupted=False, seconds=sent)
