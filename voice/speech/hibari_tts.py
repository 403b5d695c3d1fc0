"""livekit-agents TTS plugin over ``hibari-tts`` (Apache-2.0; the "heart" voice ships inside the wheel).

``HibariTTS(voice="heart", seed=0)``: deterministic output (the vocoder's noise component is seeded per call), 24 kHz
mono int16, streamed one sentence at a time as hibari produces it, with hibari's ~280 ms near-silent lead trimmed
(see :mod:`voice.speech._local_tts`). Only voices bundled in the wheel are accepted: the others would be downloaded
from Hugging Face on first use, which this platform never does (``ValueError`` instead).
Measured here (2 cores, shared with other work, load average ~5): load + warm-up 0.8-1.7 s; first audio of
``synthesize()`` 80-110 ms (one sentence is synthesised at once; later sentences follow while the first plays);
~20-40x realtime under that load, ~100x idle. ``threads=1`` (2 threads was slower on the shared box).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from ._local_tts import LocalTTS
from ._runtime import quiet_onnxruntime
from .model_cache import ModelCache

DEFAULT_VOICE = "heart"


class HibariEngine:
    """A loaded hibari model; synthesis calls are serialised (the G2P keeps state)."""

    def __init__(self, voice: str = DEFAULT_VOICE, *, threads: int = 1) -> None:
        quiet_onnxruntime()
        from hibari import Hibari
        from hibari.voices import VOICES

        info = VOICES.get(voice)
        if info is None:
            raise ValueError(f"unknown hibari voice {voice!r}; bundled: {', '.join(bundled_voices())}")
        if not info.get("bundled"):
            raise ValueError(
                f"hibari voice {voice!r} is not inside the wheel and would be downloaded; bundled: "
                f"{', '.join(bundled_voices())}"
            )
        started = time.perf_counter()
        self._tts: Any = Hibari(voice=voice, threads=threads)
        self.voice = voice
        self.sample_rate = int(self._tts.sample_rate)
        self.lock = threading.Lock()
        with self.lock:
            self._tts("Warm up.", seed=0)  # loads the G2P lexicons and runs the model once
        self.load_seconds = time.perf_counter() - started

    def sentences(
        self, text: str, *, seed: int | None, speed: float, stop: threading.Event
    ) -> Iterator[npt.NDArray[np.float32]]:
        """Blocking: float32 audio per sentence (phoneme chunk), the lock held only while synthesising one."""
        with self.lock:
            chunks = list(self._tts.phonemize(text))
        rng = np.random.default_rng(seed)
        for phonemes in chunks:
            if stop.is_set():
                return
            with self.lock:
                audio = self._tts.from_ids(self._tts.ids(phonemes), speed, rng)
            yield np.asarray(audio, dtype=np.float32)


def bundled_voices() -> list[str]:
    """hibari voices that ship inside the wheel (usable offline)."""
    from hibari.voices import VOICES

    return [name for name, info in VOICES.items() if info.get("bundled")]


_engines: ModelCache[str, HibariEngine] = ModelCache("hibari")


def get_hibari_engine(voice: str = DEFAULT_VOICE) -> HibariEngine:
    """The process-wide warm engine for ``voice`` (loaded on first use)."""
    return _engines.get(voice, lambda: HibariEngine(voice))


class HibariTTS(LocalTTS):
    """Offline neural TTS (hibari), 24 kHz, deterministic for a given ``seed`` (``None`` = random noise)."""

    def __init__(
        self,
        *,
        voice: str = DEFAULT_VOICE,
        seed: int | None = 0,
        speed: float = 1.0,
        engine: HibariEngine | None = None,
        frame_ms: int = 20,
    ) -> None:
        super().__init__(frame_ms=frame_ms)
        self._voice = voice
        self._seed = seed
        self._speed = speed
        self._engine = engine

    @property
    def model(self) -> str:
        return f"hibari-{self._voice}"

    @property
    def provider(self) -> str:
        return "hibari"

    @property
    def engine(self) -> HibariEngine:
        """The shared engine (loaded on first access)."""
        if self._engine is None:
            self._engine = get_hibari_engine(self._voice)
        return self._engine

    @property
    def native_rate(self) -> int:
        return self.engine.sample_rate

    def prewarm(self) -> None:
        """Load and warm the model now."""
        _ = self.engine

    def cache_key(self, text: str) -> Hashable | None:
        """A fixed seed makes hibari's output a function of the text (a random one is never cached)."""
        return None if self._seed is None else ("hibari", self._voice, self._seed, self._speed, text)

    def _generate(self, text: str, stop: threading.Event) -> Iterator[npt.NDArray[np.float32]]:
        return self.engine.sentences(text, seed=self._seed, speed=self._speed, stop=stop)
