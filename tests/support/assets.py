"""Assets of a space written the way the platform stores them (blob in the configured store, row in the database),
for tests that name one (a campaign's recorded voicemail message)."""

from __future__ import annotations

import io
import uuid
import wave

import numpy as np
import numpy.typing as npt
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.assets import AssetStatus
from models.enums import AssetType
from models.settings import Settings
from models.tables import Asset, new_id
from storage import build_store, space_key


def wav_bytes(pcm: npt.NDArray[np.int16], rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
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
