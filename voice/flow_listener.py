"""What the caller says while a call is in its flow (no agent yet): each utterance is cut out of the stream by its
energy (speech over a phone line's near-silence, ended by a short pause), transcribed with the process's warm
Whisper engine off the event loop, and reported to the call's workflow, where a listening ``gather`` takes it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import numpy as np

from voice.speech.audio import int16_to_float, resample_int16
from voice.speech.whisper_engine import get_whisper_engine

log = logging.getLogger(__name__)

SPEECH_RMS = 300.0  # int16 RMS of a 20 ms frame above which the caller is speaking
END_SILENCE = 0.6  # seconds of quiet that end an utterance
MIN_SPEECH = 0.25  # shorter bursts (a cough, a click) are not utterances
MAX_UTTERANCE = 15.0


def transcribe(pcm: np.ndarray, rate: int) -> str:
    audio = pcm if rate == 16000 else resample_int16(pcm, rate, 16000)
    return get_whisper_engine().transcribe(int16_to_float(audio)).text.strip()


class FlowListener:
    def __init__(self, report: Callable[[str], Awaitable[None]], *, rate: int = 8000) -> None:
        """``rate``: of the caller's int16 audio."""
        self._report = report
        self._rate = rate
        self._frames: list[np.ndarray] = []
        self._voiced = 0.0  # seconds of speech in the current utterance
        self._quiet = 0.0  # seconds of quiet since its last speech
        self._tasks: set[asyncio.Task[None]] = set()

    def audio(self, pcm: np.ndarray) -> None:
        seconds = len(pcm) / self._rate
        loud = len(pcm) > 0 and float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) > SPEECH_RMS
        if not self._frames and not loud:
            return
        self._frames.append(pcm)
        if loud:
            self._voiced += seconds
            self._quiet = 0.0
        else:
            self._quiet += seconds
        length = sum(len(f) for f in self._frames) / self._rate
        if self._quiet >= END_SILENCE or length >= MAX_UTTERANCE:
            utterance, voiced = np.concatenate(self._frames), self._voiced
            self._frames, self._voiced, self._quiet = [], 0.0, 0.0
            if voiced >= MIN_SPEECH:
                task = asyncio.create_task(self._transcribe(utterance))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _transcribe(self, pcm: np.ndarray) -> None:
        try:
            text = await asyncio.to_thread(transcribe, pcm, self._rate)
            if text:
                await self._report(text)
        except Exception:  # a lost utterance is a no-input for the gather, never a broken call
            log.exception("could not transcribe the caller in a flow")

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
