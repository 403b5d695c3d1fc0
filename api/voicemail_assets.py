"""What a recorded voicemail message may be: a stored WAV asset of the space (the voice runtime plays 16-bit PCM WAV
through the agent's output, ``voice/amd/message_audio.py``). Campaigns and placed calls check it when created."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from models.assets import AssetStatus
from models.tables import Asset

PLAYABLE_AUDIO = frozenset({"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"})


async def message_asset_problem(session: AsyncSession, space_id: str, asset_id: str) -> str | None:
    """Why this asset cannot be a voicemail message of this space, or None."""
    asset = await session.get(Asset, asset_id)
    if asset is None or asset.space_id != space_id or asset.status is not AssetStatus.STORED:
        return f"no stored asset {asset_id!r} in this space"
    if asset.content_type.split(";")[0].strip().lower() not in PLAYABLE_AUDIO:
        return f"the asset is {asset.content_type}: a message must be WAV audio (audio/wav)"
    return None
