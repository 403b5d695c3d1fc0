"""Shared base for the in-process TTS plugins (hibari, espeak-ng): livekit-agents ``tts.TTS`` over a blocking engine.

Contract of every :class:`LocalTTS`:
- output is 24 kHz mono int16 (``sample_rate`` 24000), whatever the engine's native rate;
- ``synthesize(text)`` streams audio as the engine produces it (one engine chunk per sentence, pushed as soon as it
  is ready, framed in ``frame_ms`` frames), from a worker thread so the event loop never blocks;
- every sentence's leading near-silence is trimmed to ``keep_lead_ms`` and its trailing silence to
  ``keep_tail_ms`` (the pause between sentences), so the first audio byte is speech;
- ``stream()`` accepts text incrementally (e.g. LLM tokens) and synthesises sentence by sentence through
  livekit-agents' ``tts.StreamAdapter``; ``capabilities.streaming`` stays False so an AgentSession applies its
  own adapter the same way;
- ``synthesize_pcm(text)`` is the blocking whole-utterance variant (tests, prompts, benchmarks).
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from abc import abstractmethod
from collections.abc import Hashable, Iterator

import numpy as np
import numpy.typing as npt
from livekit.agents import tts
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions

from .audio import Resampler, float_to_int16
from .pcm_cache import shared_pcm_cache

OUTPUT_RATE = 24000


def trim_silence(
    audio: npt.NDArray[np.float32],
    sample_rate: int,
    *,
    threshold: float,
    keep_lead_ms: float,
    keep_tail_ms: float,
) -> npt.NDArray[np.float32]:
    """Cut leading/trailing samples below ``threshold`` down to ``keep_lead_ms``/``keep_tail_ms``; silence → empty."""
    loud = np.flatnonzero(np.abs(audio) >= threshold)
    if loud.size == 0:
        return audio[:0]
    start = max(0, int(loud[0]) - int(sample_rate * keep_lead_ms / 1000))
    end = min(len(audio), int(loud[-1]) + 1 + int(sample_rate * keep_tail_ms / 1000))
    return audio[start:end]


class LocalTTS(tts.TTS):
    """Base class: subclasses provide the engine's native rate and a blocking per-sentence float32 generator."""

    def __init__(
        self,
        *,
        frame_ms: int = 20,
        silence_threshold: float = 0.004,
        keep_lead_ms: float = 5.0,
        keep_tail_ms: float = 200.0,
    ) -> None:
        super().__init__(capabilities=tts.TTSCapabilities(streaming=False), sample_rate=OUTPUT_RATE, num_channels=1)
        self._frame_ms = frame_ms
        self._threshold = silence_threshold
        self._keep_lead_ms = keep_lead_ms
        self._keep_tail_ms = keep_tail_ms
        self._adapter: tts.StreamAdapter | None = None

    @property
    @abstractmethod
    def native_rate(self) -> int:
        """Sample rate of the engine's float32 output."""

    @abstractmethod
    def _generate(self, text: str, stop: threading.Event) -> Iterator[npt.NDArray[np.float32]]:
        """Blocking: yield float32 audio at ``native_rate``, one chunk per sentence; stop early when ``stop`` is set."""

    def cache_key(self, text: str) -> Hashable | None:
        """What identifies ``text``'s audio in this voice if its output is deterministic (then it is cached)."""
        return None

    def pcm_chunks(self, text: str, stop: threading.Event | None = None) -> Iterator[bytes]:
        """Blocking: 24 kHz int16 little-endian bytes, one chunk per sentence, silence-trimmed; a text this voice
        has said before (and can only say the same way) comes from the process's :mod:`pcm_cache`."""
        key = self.cache_key(text)
        cache = shared_pcm_cache()
        if key is None or cache.max_bytes <= 0:
            yield from self._pcm_chunks(text, stop or threading.Event())
            return
        cached = cache.get(key)
        if cached is not None:
            yield from cached
            return
        stop = stop or threading.Event()
        made: list[bytes] = []
        for chunk in self._pcm_chunks(text, stop):
            made.append(chunk)
            yield chunk
        if not stop.is_set():  # a text cut short (barge-in) is not all of it
            cache.put(key, tuple(made))

    def _pcm_chunks(self, text: str, stop: threading.Event) -> Iterator[bytes]:
        resampler = Resampler(self.native_rate, OUTPUT_RATE) if self.native_rate != OUTPUT_RATE else None
        for chunk in self._generate(text, stop):
            audio = trim_silence(
                chunk,
                self.native_rate,
                threshold=self._threshold,
                keep_lead_ms=self._keep_lead_ms,
                keep_tail_ms=self._keep_tail_ms,
            )
            if resampler is not None:
                audio = resampler.push(audio)
            if len(audio):
                yield float_to_int16(audio).tobytes()
            if stop.is_set():
                return
        if resampler is not None:
            tail = resampler.flush()
            if len(tail):
                yield float_to_int16(tail).tobytes()

    def synthesize_pcm(self, text: str) -> npt.NDArray[np.int16]:
        """Blocking: the whole utterance as 24 kHz int16 samples."""
        data = b"".join(self.pcm_chunks(text))
        return np.frombuffer(data, dtype="<i2").astype(np.int16)

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> LocalChunkedStream:
        return LocalChunkedStream(tts=self, input_text=text, conn_options=conn_options)

    def stream(self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> tts.SynthesizeStream:
        """Incremental text in, sentence-by-sentence audio out (livekit-agents ``StreamAdapter``)."""
        if self._adapter is None:
            self._adapter = tts.StreamAdapter(tts=self)
        return self._adapter.stream(conn_options=conn_options)


class LocalChunkedStream(tts.ChunkedStream):
    """Runs the engine in a worker thread and pushes each sentence's PCM as soon as it exists."""

    def __init__(self, *, tts: LocalTTS, input_text: str, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._local: LocalTTS = tts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        output_emitter.initialize(
            request_id=uuid.uuid4().hex,
            sample_rate=OUTPUT_RATE,
            num_channels=1,
            mime_type="audio/pcm",
            frame_size_ms=self._local._frame_ms,
        )
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
        stop = threading.Event()

        def _post(item: bytes | BaseException | None) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone (stream abandoned at shutdown)
                stop.set()

        def _work() -> None:
            try:
                for chunk in self._local.pcm_chunks(self.input_text, stop):
                    _post(chunk)
            except Exception as exc:  # handed to the event loop and re-raised there
                _post(exc)
            finally:
                _post(None)

        loop.run_in_executor(None, _work)
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                output_emitter.push(item)
            output_emitter.flush()
        finally:
            stop.set()  # closed early (barge-in): the worker stops after the sentence in progress, unawaited
