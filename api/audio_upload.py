"""Uploaded audio, checked by decoding it all the way through and converted to what the voice runtime plays.

The file is recognised by its first bytes (WAV, MP3, Ogg Vorbis/Opus, FLAC; the declared content type is only a
hint) and decoded with PyAV, whose FFmpeg decoders ship inside the wheel that livekit-agents and faster-whisper
already install (nothing is downloaded). Every frame is decoded, so a file that only looks like audio (a good
header over garbage, a truncated stream with nothing playable) is refused, not stored. The audio is mixed down to
mono and stored as 16-bit PCM WAV at its own rate, or 16 kHz when higher (a phone line carries 8 kHz, the console
16 kHz): the format flow prompts (``voice/flow_audio.py``) and voicemail messages (``voice/amd/message_audio.py``)
play. Decoding stops as soon as the audio passes the longest allowed, so a small file that expands to hours costs
no more than the limit."""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass

import av
import av.error

STORED_RATE_MAX = 16_000
RATE_MIN, RATE_MAX = 8_000, 96_000
FORMATS = ("wav", "mp3", "ogg", "flac")


class AudioRejected(Exception):
    """Why the upload is not usable audio (the API answers 422 with this reason)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ConvertedAudio:
    wav: bytes  # mono 16-bit PCM WAV
    source_format: str  # one of FORMATS
    source_rate: int
    source_channels: int
    sample_rate: int  # of ``wav``
    duration_seconds: float


def sniff(head: bytes) -> str | None:
    """The container the first bytes announce, or None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:3] == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    return None


def convert(data: bytes, max_seconds: float) -> ConvertedAudio:
    """Decode ``data`` whole and return it as mono PCM16 WAV; AudioRejected says why it cannot be."""
    if not data:
        raise AudioRejected("the file is empty")
    kind = sniff(data[:16])
    if kind is None:
        raise AudioRejected("not an audio file: upload WAV (16-bit PCM), MP3 or Ogg")
    try:
        return _decode(data, kind, max_seconds)
    except av.error.FFmpegError as exc:
        raise AudioRejected(f"the {kind.upper()} file is corrupt: it does not decode ({type(exc).__name__})") from None
    except (ValueError, EOFError, OverflowError, MemoryError) as exc:
        raise AudioRejected(f"the {kind.upper()} file does not decode ({type(exc).__name__})") from None


def _decode(data: bytes, kind: str, max_seconds: float) -> ConvertedAudio:
    with av.open(io.BytesIO(data), mode="r", format=kind) as container:
        if not container.streams.audio:
            raise AudioRejected(f"the {kind.upper()} file has no audio stream")
        stream = container.streams.audio[0]
        rate, channels = stream.codec_context.sample_rate, stream.codec_context.channels
        if not RATE_MIN <= rate <= RATE_MAX:
            raise AudioRejected(f"sample rate {rate} Hz: {RATE_MIN}-{RATE_MAX} Hz is accepted")
        target = min(rate, STORED_RATE_MAX)
        resampler = av.AudioResampler(format="s16", layout="mono", rate=target)
        limit = int(max_seconds * target)
        pcm = bytearray()
        for packet in container.demux(stream):
            for frame in packet.decode():
                for out in resampler.resample(frame):
                    pcm += out.to_ndarray().tobytes()
            if len(pcm) // 2 > limit:
                raise AudioRejected(f"the audio is longer than {max_seconds:g} seconds")
        for out in resampler.resample(None):
            pcm += out.to_ndarray().tobytes()
    samples = len(pcm) // 2
    if samples == 0:
        raise AudioRejected(f"the {kind.upper()} file holds no audio")
    if samples > limit:
        raise AudioRejected(f"the audio is longer than {max_seconds:g} seconds")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(target)
        wav.writeframes(bytes(pcm[: samples * 2]))
    return ConvertedAudio(buffer.getvalue(), kind, rate, channels, target, samples / target)
