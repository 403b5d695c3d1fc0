"""livekit-agents TTS plugin over espeak-ng (the library and voice data inside the ``espeakng-loader`` wheel).

Fast fallback: ~30 ms to first audio through ``synthesize()`` (loaded box), robotic: Whisper tiny.en WER ~0.2
on it at 16 kHz, ~0.4 in the phone band (hibari: 0.0). Same interface as :class:`HibariTTS`
(24 kHz mono int16, per-sentence streaming, silence trimmed); espeak's native 22.05 kHz is resampled here.
espeak-ng keeps global state, so all synthesis in the process goes through one lock; the library is loaded
(``espeak_Initialize`` in synchronous mode, the callback collecting samples) on first use.
``voice`` is an espeak-ng voice name such as ``en-us`` (default) or ``en``; ``rate`` is words per minute.
"""

from __future__ import annotations

import ctypes
import re
import threading
import time
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

from ._local_tts import LocalTTS
from .model_cache import ModelCache

DEFAULT_VOICE = "en-us"
_AUDIO_OUTPUT_SYNCHRONOUS = 0x02
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_RATE = 1  # espeakRATE
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class EspeakEngine:
    """The process's espeak-ng library, initialised once; :meth:`synth` is blocking and serialised."""

    def __init__(self) -> None:
        import espeakng_loader

        started = time.perf_counter()
        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self._lib.espeak_Initialize.restype = ctypes.c_int
        self._lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self._lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self._lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self._lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0)
        if rate <= 0:
            raise RuntimeError("espeak-ng failed to initialise (data path from espeakng-loader)")
        self.sample_rate = int(rate)
        self._chunks: list[npt.NDArray[np.int16]] = []
        self._callback = _CALLBACK(self._collect)  # kept referenced for the library's lifetime
        self._lib.espeak_SetSynthCallback(self._callback)
        self._voice = ""
        self._rate = 0
        self.lock = threading.Lock()
        self.load_seconds = time.perf_counter() - started

    def _collect(self, wav: ctypes._Pointer[ctypes.c_short], count: int, _events: int | None) -> int:
        if count > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).astype(np.int16))
        return 0

    def synth(self, text: str, *, voice: str, rate: int) -> npt.NDArray[np.float32]:
        """Blocking: float32 audio at :attr:`sample_rate` for ``text``."""
        with self.lock:
            if voice != self._voice:
                if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                    raise ValueError(f"espeak-ng has no voice {voice!r}")
                self._voice = voice
            if rate != self._rate:
                self._lib.espeak_SetParameter(_RATE, rate, 0)
                self._rate = rate
            self._chunks = []
            data = text.encode("utf-8") + b"\0"
            buf = ctypes.create_string_buffer(data)
            self._lib.espeak_Synth(buf, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            pcm = np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.int16)
            self._chunks = []
        return (pcm.astype(np.float32) / 32768.0).astype(np.float32)


_engine: ModelCache[str, EspeakEngine] = ModelCache("espeak-ng")


def get_espeak_engine() -> EspeakEngine:
    """The process-wide espeak-ng engine (initialised on first use)."""
    return _engine.get("default", EspeakEngine)


class EspeakTTS(LocalTTS):
    """Offline formant TTS (espeak-ng), resampled to 24 kHz."""

    def __init__(self, *, voice: str = DEFAULT_VOICE, rate: int = 170, frame_ms: int = 20) -> None:
        super().__init__(frame_ms=frame_ms, keep_tail_ms=150.0)
        self._voice = voice
        self._rate = rate

    @property
    def model(self) -> str:
        return f"espeak-ng-{self._voice}"

    @property
    def provider(self) -> str:
        return "espeak-ng"

    @property
    def native_rate(self) -> int:
        return get_espeak_engine().sample_rate

    def prewarm(self) -> None:
        """Initialise the library now."""
        get_espeak_engine()

    def _generate(self, text: str, stop: threading.Event) -> Iterator[npt.NDArray[np.float32]]:
        engine = get_espeak_engine()
        for sentence in _SENTENCE_END.split(text.strip()):
            if stop.is_set():
                return
            if sentence.strip():
                yield engine.synth(sentence, voice=self._voice, rate=self._rate)
