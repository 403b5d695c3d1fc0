"""Silero VAD (the ONNX model inside ``livekit-plugins-silero``), loaded offline, shared and kept warm.

``load_vad()`` returns a livekit-agents ``vad.VAD``; the default runs inference at 8 kHz (phone audio needs no
resampling; 16 kHz input is resampled by the plugin). One instance per distinct option set per process: every
``stream()`` of it has its own state, so calls can share it. onnxruntime telemetry is disabled before loading.
Inference runs on one silero thread per process (:class:`ThreadedSileroVAD`); :class:`CallVAD` lets a call's session and
its STT share one stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Literal, TypeVar, cast

from livekit.agents import vad as agents_vad

# livekit plugins register themselves on import and insist on the main thread: import here, at module load,
# so loading the model later from a worker thread (warm-up) is allowed.
from livekit.plugins import silero
from livekit.plugins.silero import onnx_model as silero_onnx

from ._runtime import quiet_onnxruntime
from .model_cache import ModelCache

T = TypeVar("T")


_SILERO_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="silero")


class _SileroExecutor:
    """Stands in for a VAD stream's event loop: ``run_in_executor`` runs silero on the process's own silero thread.

    One silero window (32 ms of audio) takes ~0.15 ms of CPU. Through the default executor it queued behind
    whatever else was there (Whisper runs, TTS), so a busy process noticed the end of speech seconds late; run
    inline on the loop, a CPU-starved loop stalled the calls' heartbeats (calls moved under load in
    bench.voice_capacity). One dedicated thread keeps both apart: onnxruntime releases the GIL while it infers."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def run_in_executor(self, executor: object, func: Callable[..., T], *args: object) -> asyncio.Future[T]:
        return self._loop.run_in_executor(_SILERO_THREAD, func, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)


class ThreadedSileroVAD(silero.VAD):
    """silero's VAD, its inference on the silero thread (see :class:`_SileroExecutor`)."""

    def stream(self) -> silero.VADStream:
        stream = super().stream()
        stream._loop = _SileroExecutor(stream._loop)  # type: ignore[assignment]
        return stream


class CallVAD(ThreadedSileroVAD):
    """One call's VAD (same model and options as the process's): its session's stream is the only silero run over
    the caller's audio, and the call's STT hears that stream's events (:meth:`listening`) instead of running a
    second silero over the same frames (each stream cost ~30 inferences a second, plus its event tasks)."""

    def __init__(self, shared: agents_vad.VAD) -> None:
        assert isinstance(shared, silero.VAD), shared
        super().__init__(session=shared._onnx_session, opts=shared._opts)
        self._listeners: list[asyncio.Queue[agents_vad.VADEvent | None]] = []

    def stream(self) -> silero.VADStream:
        model = silero_onnx.OnnxModel(onnx_session=self._onnx_session, sample_rate=self._opts.sample_rate)
        stream = _TappedStream(self, self._opts, model)
        stream._loop = _SileroExecutor(stream._loop)  # type: ignore[assignment]
        self._streams.add(stream)
        return stream

    def publish(self, event: agents_vad.VADEvent) -> None:
        for listener in self._listeners:
            listener.put_nowait(event)

    @contextmanager
    def listening(self) -> Iterator[asyncio.Queue[agents_vad.VADEvent | None]]:
        """The events of the session's VAD stream(s) while the block runs (put ``None`` to end a reader)."""
        queue: asyncio.Queue[agents_vad.VADEvent | None] = asyncio.Queue()
        self._listeners.append(queue)
        try:
            yield queue
        finally:
            self._listeners.remove(queue)


class _TappedStream(silero.VADStream):
    async def __anext__(self) -> agents_vad.VADEvent:
        event = await super().__anext__()
        cast(CallVAD, self._vad).publish(event)
        return event


VadKey = tuple[int, float, float, float, float]
_vads: ModelCache[VadKey, agents_vad.VAD] = ModelCache("silero-vad")
load_seconds: dict[tuple[int, float, float, float, float], float] = {}


def load_vad(
    *,
    sample_rate: Literal[8000, 16000] = 8000,
    min_silence_duration: float = 0.55,
    min_speech_duration: float = 0.05,
    prefix_padding_duration: float = 0.3,
    activation_threshold: float = 0.5,
) -> agents_vad.VAD:
    """The process-wide silero VAD for these options (loaded from the plugin wheel on first use, never fetched)."""
    key = (sample_rate, min_silence_duration, min_speech_duration, prefix_padding_duration, activation_threshold)

    def load() -> agents_vad.VAD:
        quiet_onnxruntime()
        started = time.perf_counter()
        vad = ThreadedSileroVAD.load(
            sample_rate=sample_rate,
            min_silence_duration=min_silence_duration,
            min_speech_duration=min_speech_duration,
            prefix_padding_duration=prefix_padding_duration,
            activation_threshold=activation_threshold,
        )
        load_seconds[key] = time.perf_counter() - started
        return vad

    return _vads.get(key, load)
