"""Answering-machine detection from the callee's first seconds of audio (pure: numpy over 8/16 kHz PCM, with the
per-window speech probability injected — :class:`voice.amd.silero_frames.SileroFrames` in calls).

People answer with a short greeting ("Hello?", "Hi, this is Sam") and then wait for the caller; a voicemail
greeting talks on for several seconds ("Hi, you've reached ... please leave a message after the tone") and ends in
a beep. So, window by window (32 ms):

- **human**: speech began, the greeting holds at most ``max_human_greeting_ms`` of speech, then
  ``after_greeting_silence_ms`` of silence (the person waits for an answer);
- **machine**: the greeting's speech exceeds ``max_human_greeting_ms`` (pauses between its sentences are shorter
  than the silence a person leaves), or a beep is heard;
- **unknown**: nobody speaks for ``initial_silence_ms``, or ``max_decision_ms`` pass without either.

Decision times are audio time from the answer (the first sample pushed), so they are the same on any machine.
After a *machine* decision the detector keeps listening for where a message can start: the end of the beep, or,
for a greeting without one, ``greeting_end_silence_ms`` of silence after its last word (bounded by
``max_message_wait_ms``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from models.enums import AnsweredBy
from voice.amd.tone import Beep, BeepTracker, ToneParams

SpeechProbability = Callable[[npt.NDArray[np.float32]], float]


@dataclass(frozen=True)
class AmdParams:
    speech_threshold: float = 0.5
    initial_silence_ms: int = 4000
    max_human_greeting_ms: int = 2000
    after_greeting_silence_ms: int = 800
    max_decision_ms: int = 6000
    greeting_end_silence_ms: int = 2000
    max_message_wait_ms: int = 30000
    tone: ToneParams = field(default_factory=ToneParams)


@dataclass(frozen=True)
class AmdDecision:
    answered_by: AnsweredBy
    decision_ms: int  # audio time from the answer to the decision
    reason: str  # "short greeting", "long greeting", "beep", "silence", "undecided"
    greeting_speech_ms: int  # speech heard by then


@dataclass(frozen=True)
class MessageCue:
    """Where a voicemail message can start: after the beep (``beep`` set) or after the greeting fell silent."""

    at_ms: int
    beep: Beep | None


class AnsweringMachineDetector:
    """Push the callee's PCM as it arrives; read :attr:`decision`, then :attr:`cue` (machines only)."""

    def __init__(self, sample_rate: int, window: int, speech: SpeechProbability, params: AmdParams | None = None):
        self.sample_rate = sample_rate
        self.window = window
        self.params = params or AmdParams()
        self._speech = speech
        self._beeps = BeepTracker(sample_rate, window, self.params.tone)
        self._window_ms = 1000.0 * window / sample_rate
        self._pending = np.zeros(0, dtype=np.float32)
        self._t = 0.0  # ms of audio analysed
        self._speech_ms = 0.0
        self._first_speech: float | None = None
        self._last_speech_end: float | None = None
        self.decision: AmdDecision | None = None
        self.cue: MessageCue | None = None
        self.beep: Beep | None = None
        self._cue_wanted = False

    @property
    def heard_ms(self) -> int:
        return round(self._t)

    def expect_message(self) -> None:
        """Look for where a message can start even without our own machine decision (the carrier's AMD said
        machine first)."""
        self._cue_wanted = True

    def push(self, pcm: npt.NDArray[np.int16] | bytes) -> None:
        """Mono int16 PCM at ``sample_rate`` (any chunk size)."""
        samples = np.frombuffer(pcm, dtype="<i2") if isinstance(pcm, bytes) else pcm
        audio = samples.astype(np.float32) / 32768.0
        self._pending = np.concatenate([self._pending, audio]) if len(self._pending) else audio
        while len(self._pending) >= self.window and self.cue is None:
            window, self._pending = self._pending[: self.window], self._pending[self.window :]
            self._step(window)

    def _step(self, window: npt.NDArray[np.float32]) -> None:
        p, start = self.params, self._t
        beep = self._beeps.push(window, start)
        probability = self._speech(window)  # every window, so the VAD's state follows the audio
        self._t = end = start + self._window_ms
        if beep is not None and self.beep is None:
            self.beep = beep
        speaking = probability >= p.speech_threshold and not self._beeps.tonal
        if speaking:
            self._speech_ms += self._window_ms
            self._first_speech = start if self._first_speech is None else self._first_speech
            self._last_speech_end = end
        if self.decision is None:
            self._decide(end)
        machine = self.decision is not None and self.decision.answered_by is AnsweredBy.MACHINE
        if machine or self._cue_wanted:
            self._cue(end)

    def _decide(self, now: float) -> None:
        p = self.params
        silence = now - self._last_speech_end if self._last_speech_end is not None else now
        if self.beep is not None or self._beeps.in_beep:
            self._decided(AnsweredBy.MACHINE, now, "beep")
        elif self._speech_ms > p.max_human_greeting_ms:
            self._decided(AnsweredBy.MACHINE, now, "long greeting")
        elif self._first_speech is not None and silence >= p.after_greeting_silence_ms:
            self._decided(AnsweredBy.HUMAN, now, "short greeting")
        elif self._first_speech is None and now >= p.initial_silence_ms:
            self._decided(AnsweredBy.UNKNOWN, now, "silence")
        elif now >= p.max_decision_ms:
            self._decided(AnsweredBy.UNKNOWN, now, "undecided")

    def _decided(self, answered_by: AnsweredBy, now: float, reason: str) -> None:
        self.decision = AmdDecision(answered_by, round(now), reason, round(self._speech_ms))

    def _cue(self, now: float) -> None:
        p = self.params
        if self.beep is not None:
            self.cue = MessageCue(self.beep.end_ms, self.beep)
        elif self._beeps.in_beep:
            return  # the beep is still sounding
        else:
            fell_silent = self._last_speech_end is not None and now - self._last_speech_end >= p.greeting_end_silence_ms
            if fell_silent or now >= p.max_message_wait_ms:
                self.cue = MessageCue(round(now), None)
