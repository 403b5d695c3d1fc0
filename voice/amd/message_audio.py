"""A recorded voicemail message: the space's WAV asset a campaign names (``AmdOptions.message_asset_id``), read from
storage as 20 ms mono PCM16 frames for ``AgentSession.say(..., audio=...)``, the path the text message takes (the
session's output resamples them to the call's rate). The asset's space is checked again here: a call plays only
its own space's audio, whatever its options say."""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import AsyncIterator, Awaitable, Callable

import numpy as np
from livekit import rtc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.assets import AssetStatus
from models.tables import Asset
from storage import BlobStore

FRAME_MS = 20
MAX_MESSAGE_BYTES = 20 * 1024 * 1024  # ~10 min of 16 kHz mono: a voicemail message is seconds long

MessageAudio = Callable[[str], Awaitable[list[rtc.AudioFrame]]]


class MessageAudioError(Exception):
    """The asset cannot be played (gone, another space's, not 16-bit WAV)."""


def wav_frames(data: bytes) -> list[rtc.AudioFrame]:
    """16-bit PCM WAV (any rate, mono or several channels mixed down) as 20 ms mono frames."""
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise MessageAudioError(f"not a WAV file: {exc}") from exc
    if width != 2:
        raise MessageAudioError("only 16-bit PCM WAV can be played")
    pcm = np.frombuffer(raw, dtype="<i2").reshape(-1, channels)
    mono = pcm.mean(axis=1).astype(np.int16) if channels > 1 else pcm[:, 0]
    step = rate * FRAME_MS // 1000
    return [
        rtc.AudioFrame(mono[i : i + step].tobytes(), rate, 1, len(mono[i : i + step]))
        for i in range(0, len(mono), step)
    ]


async def load_message_audio(
    sessions: async_sessionmaker[AsyncSession], store: BlobStore, space_id: str, asset_id: str
) -> list[rtc.AudioFrame]:
    async with sessions() as session:
        asset = await session.get(Asset, asset_id)
    if asset is None or asset.space_id != space_id or asset.status is not AssetStatus.STORED:
        raise MessageAudioError("no such stored asset in the call's space")
    if (asset.size_bytes or 0) > MAX_MESSAGE_BYTES:
        raise MessageAudioError("the message is too long")

    def read() -> bytes:
        return b"".join(store.read_range(asset.storage_key))

    return wav_frames(await asyncio.to_thread(read))


def message_audio_of(sessions: async_sessionmaker[AsyncSession], store: BlobStore, space_id: str) -> MessageAudio:
    """The loader a call's AMD listener plays its recorded message with."""

    async def load(asset_id: str) -> list[rtc.AudioFrame]:
        return await load_message_audio(sessions, store, space_id, asset_id)

    return load


async def frames_of(frames: list[rtc.AudioFrame]) -> AsyncIterator[rtc.AudioFrame]:
    for frame in frames:
        yield frame
