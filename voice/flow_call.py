"""A call's flow on whatever transport carries its audio (a carrier media stream, the console socket): the
transport-neutral part of the ``FlowStream`` the flow's media activities reach on this process.

The transport feeds the caller's audio (PCM16 at its rate) and keys in, and gives an ``io.AudioOutput`` for the
prompts; this says the prompts, listens for the caller's words while no agent answers, records a voicemail, and
hands the call to an agent through the transport's own ``answer`` once the flow asks for it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
from livekit.agents.voice import io

from models.flow_calls import PlayPrompt, PromptPlayed, RecordVoicemail, StartFlowAgent, VoicemailRecorded
from voice.flow_audio import PromptAudio
from voice.flow_listener import FlowListener
from voice.flow_prompts import FlowPrompter
from voice.flow_voicemail import VoicemailTake, play_tone

log = logging.getLogger(__name__)

Answer = Callable[[StartFlowAgent], Awaitable[None]]
Report = Callable[[str], Awaitable[None]]


class FlowCall:
    def __init__(
        self,
        output: io.AudioOutput,
        *,
        rate: int,
        report_speech: Report,
        answer: Answer,
        voicemail_path: Path,
        audio: PromptAudio | None = None,
        on_prompt: Callable[[str], None] | None = None,
    ) -> None:
        """``rate``: the caller's audio; ``voicemail_path``: where messages go (numbered after it); ``audio``: the
        space's audio assets a ``say`` may play; ``on_prompt``: told each prompt's text as it starts (the console
        shows it)."""
        self._rate = rate
        self._output = output
        self._answer = answer
        self._on_prompt = on_prompt
        self._prompter = FlowPrompter(output, audio)
        self._listener = FlowListener(report_speech, rate=rate)
        self._voicemail: VoicemailTake | None = None
        self._voicemail_path = voicemail_path
        self._voicemails = 0
        self._ended = False
        self.handed_off = False  # an agent answers the caller from now on

    # ------------------------------------------------------------------------ from the transport
    def audio(self, pcm: np.ndarray) -> None:
        """The caller's audio (int16 at ``rate``)."""
        if self._voicemail is not None:
            self._voicemail.audio(pcm)
        elif not self.handed_off:
            self._listener.audio(pcm)

    def key(self, digit: str) -> None:
        """A key pressed: a prompt waiting for input stops at once (before the workflow hears of it)."""
        self._prompter.key_pressed()
        if self._voicemail is not None:
            self._voicemail.key(digit)

    def close(self) -> None:
        """The caller is gone: a message being recorded ends with the call, and is kept."""
        self._ended = True
        if self._voicemail is not None:
            self._voicemail.hung_up()
        self._listener.close()

    # ------------------------------------------------------------------------ FlowStream
    async def play_prompt(self, request: PlayPrompt) -> PromptPlayed:
        if self.handed_off:
            raise RuntimeError("this call is no longer in its flow")
        if self._on_prompt is not None and request.asset_id is None:
            self._on_prompt(request.text)
        return await self._prompter.play(request)

    async def record_voicemail(self, request: RecordVoicemail) -> VoicemailRecorded:
        """Prompt, tone, then the caller's message until silence, the finish key, hang-up or the time limit."""
        if self.handed_off:
            raise RuntimeError("this call is no longer in its flow")
        if request.prompt:
            prompt = PlayPrompt(request.stream_id, request.call_id, request.prompt, request.tts_provider, request.voice)
            await self._prompter.play(prompt)
        await play_tone(self._output)
        take = self._voicemail = VoicemailTake(request, rate=self._rate)
        if self._ended:
            take.hung_up()
        try:
            await take.done.wait()
        finally:
            self._voicemail = None
        self._voicemails += 1
        base = self._voicemail_path
        path = base.with_name(f"{base.stem}-{self._voicemails}{base.suffix or '.wav'}")
        return await asyncio.to_thread(take.write, path)

    async def start_agent(self, request: StartFlowAgent) -> None:
        """The flow hands the caller to an agent, with what it gathered (once: a retried hand-off is a no-op)."""
        if self.handed_off:
            return
        self.handed_off = True
        self._listener.close()
        try:
            await self._answer(request)
        except BaseException:
            self.handed_off = False
            raise
        log.info("flow handed the call to an agent", extra={"call_id": request.call_id})
