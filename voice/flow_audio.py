"""Audio assets a flow's ``say`` steps play: a stored WAV of the call's space (the flow was checked against the
space when saved; the asset is looked up in the call's space again here), read from the space's store and kept
for the next caller (a menu plays the same prompts all day)."""

from __future__ import annotations

import asyncio
import io
import wave
from collections import OrderedDict

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.tables import Asset
from storage.base import BlobStore

KEEP = 32  # assets kept decoded in memory
MAX_BYTES = 20 * 1024 * 1024  # a prompt, not a recording of a whole call


class PromptAudioError(Exception):
    """The asset cannot be played (gone, another space's, not PCM WAV)."""


def decode_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Mono int16 PCM and its rate (channels summed: a recording's caller-left, silent-right layout stays whole)."""
    try:
        with wave.open(io.BytesIO(data)) as wav:
            if wav.getsampwidth() != 2:
                raise PromptAudioError("only 16-bit PCM WAV can be played")
            channels, rate = wav.getnchannels(), wav.getframerate()
            pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int32)
    except (wave.Error, EOFError) as exc:
        raise PromptAudioError(f"not a WAV file: {exc}") from None
    mono = pcm.reshape(-1, channels).sum(axis=1) if channels > 1 else pcm
    return np.clip(mono, -32768, 32767).astype(np.int16), rate


class PromptAudio:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], store: BlobStore) -> None:
        self._sessions = sessions
        self._store = store
        self._kept: OrderedDict[tuple[str, str], tuple[np.ndarray, int]] = OrderedDict()

    async def load(self, space_id: str, asset_id: str) -> tuple[np.ndarray, int]:
        key = (space_id, asset_id)
        if key in self._kept:
            self._kept.move_to_end(key)
            return self._kept[key]
        async with self._sessions() as session:
            asset = await session.get(Asset, asset_id)
        if asset is None or asset.space_id != space_id or asset.deleted_at is not None:
            raise PromptAudioError("the asset is not in the call's space")
        if (asset.size_bytes or 0) > MAX_BYTES:
            raise PromptAudioError("the asset is too long for a prompt")
        data = await asyncio.to_thread(lambda: b"".join(self._store.read_range(asset.storage_key)))
        decoded = await asyncio.to_thread(decode_wav, data)
        self._kept[key] = decoded
        while len(self._kept) > KEEP:
            self._kept.popitem(last=False)
        return decoded
