"""Assets of a space written the way the platform stores them (blob in the configured store, row in the database),
for tests that name one (a campaign's recorded voicemail message); audio encoded in other formats, and uploaded
through the API (``POST /v1/spaces/{id}/assets``)."""

from __future__ import annotations

import io
import uuid
import wave

import av
import httpx
import numpy as np
import numpy.typing as npt
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.assets import AssetStatus
from models.enums import AssetType
from models.settings import Settings
from models.tables import Asset, new_id
from storage import build_store, space_key


def tone(seconds: float, rate: int, hz: float = 440.0) -> npt.NDArray[np.int16]:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * hz * t) * 8000).astype(np.int16)


def wav_bytes(pcm: npt.NDArray[np.int16], rate: int, channels: int = 1) -> bytes:
    """16-bit PCM WAV; with ``channels`` > 1 the same signal in each channel."""
    if channels > 1:
        pcm = np.repeat(pcm[:, None], channels, axis=1)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())
    return buffer.getvalue()


async def stored_asset(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    space_id: str,
    data: bytes,
    *,
    content_type: str = "audio/wav",
    status: AssetStatus = AssetStatus.STORED,
) -> str:
    """A new asset of ``space_id`` holding ``data``: its id."""
    asset_id = new_id("assets")
    key = space_key(space_id, "uploads", f"{uuid.uuid4().hex}.bin")
    blob = build_store(settings).put_stream(key, io.BytesIO(data), content_type)
    async with sessions() as session:
        session.add(
            Asset(
                id=asset_id,
                space_id=space_id,
                type=AssetType.OTHER,
                storage_key=key,
                content_type=content_type,
                size_bytes=blob.size,
                sha256=blob.sha256,
                status=status,
            )
        )
        await session.commit()
    return asset_id


def encoded(container: str, codec: str, pcm: npt.NDArray[np.int16], rate: int) -> bytes:
    """Mono audio in another format, encoded with PyAV's own FFmpeg (e.g. "mp3"/"libmp3lame", "ogg"/"libopus")."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate)
        assert isinstance(stream, av.AudioStream)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(pcm.astype(np.int16)[None, :], format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return buffer.getvalue()


async def upload_audio(
    client: httpx.AsyncClient,
    space_path: str,
    headers: dict[str, str],
    data: bytes,
    *,
    filename: str = "prompt.wav",
    content_type: str | None = "audio/wav",
    name: str | None = None,
) -> httpx.Response:
    """``POST {space_path}/assets`` as curl -F does: a ``file`` part and an optional ``name``."""
    part = (filename, data, content_type) if content_type is not None else (filename, data)
    form = {"name": name} if name is not None else None
    return await client.post(f"{space_path}/assets", files={"file": part}, data=form, headers=headers)
