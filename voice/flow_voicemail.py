"""A flow's voicemail on a call's stream: after the prompt and a tone, the caller's audio is written to a WAV
(caller left, silent right: the recordings' stereo layout, so the ordinary transcription reads it) until the
caller has spoken and then been silent for a while, presses the finish key, hangs up, or the time is up.

Speech is told from line silence by the frames' energy (a phone line's silence is near zero), which is enough to
end a message; Whisper later transcribes it."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
from livekit import rtc
from livekit.agents.voice import io

from models.flow_calls import RecordVoicemail, VoicemailRecorded

RATE = 8000
SPEECH_RMS = 300.0  # int16 RMS of a 20 ms frame above which the caller is speaking
TONE_SECONDS, TONE_HZ = 0.4, 1000.0


class VoicemailTake:
    """One message being recorded: fed the caller's frames and keys by the stream."""

    def __init__(self, request: RecordVoicemail, *, rate: int = RATE) -> None:
        """``rate``: of the caller's int16 audio (and of the file)."""
        self.request = request
        self._rate = rate
        self.done = asyncio.Event()
        self.ended_by = "max"
        self._chunks: list[np.ndarray] = []
        self._seconds = 0.0
        self._spoke_at: float | None = None  # seconds into the message of the last speech frame

    def audio(self, pcm: np.ndarray) -> None:
        if self.done.is_set():
            return
        self._chunks.append(pcm)
        self._seconds += len(pcm) / self._rate
        if len(pcm) and float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) > SPEECH_RMS:
            self._spoke_at = self._seconds
        r = self.request
        if self._spoke_at is not None and self._seconds - self._spoke_at >= r.silence_seconds:
            self._end("silence")
        elif self._spoke_at is None and self._seconds >= r.no_speech_seconds:
            self._end("no-speech")
        elif self._seconds >= r.max_seconds:
            self._end("max")

    def key(self, digit: str) -> None:
        if self.request.finish_key is not None and digit == self.request.finish_key:
            self._end("key")

    def hung_up(self) -> None:
        self._end("hangup")

    def _end(self, why: str) -> None:
        if not self.done.is_set():
            self.ended_by = why
            self.done.set()

    def write(self, path: Path) -> VoicemailRecorded:
        caller = np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.int16)
        stereo = np.zeros((len(caller), 2), dtype="<i2")
        stereo[:, 0] = caller
        path.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(path), "wb") as wav:
            wav.setnchannels(2)
            wav.setsampwidth(2)
            wav.setframerate(self._rate)
            wav.writeframes(stereo.tobytes())
        return VoicemailRecorded(str(path), len(caller) / self._rate, self.ended_by, self._spoke_at is not None)


async def play_tone(output: io.AudioOutput) -> None:
    rate = output.sample_rate or RATE  # the sink's own rate: no resampling on the way
    samples = int(rate * TONE_SECONDS)
    t = np.arange(samples) / rate
    tone = (0.3 * 32767 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.int16)
    for start in range(0, samples, rate // 50):
        chunk = tone[start : start + rate // 50]
        frame = rtc.AudioFrame(chunk.tobytes(), rate, 1, len(chunk))
        await output.capture_frame(frame)
    output.flush()
    await output.wait_for_playout()
