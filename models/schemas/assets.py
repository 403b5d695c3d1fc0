"""API schemas of a space's uploaded audio assets (prompts a flow's ``say`` plays, voicemail messages)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from models.assets import AssetStatus
from models.schemas.common import OutSchema

# A name is shown in lists and consoles: printable text only (a NUL or a line break would reach logs and columns).
ASSET_NAME_PATTERN = r"^[^\x00-\x1f\x7f]*$"


class AssetOut(OutSchema):
    id: str
    space_id: str
    name: str | None
    status: AssetStatus
    content_type: str = Field(description="What is stored and played: audio/wav (mono, 16-bit PCM)")
    size_bytes: int | None
    sha256: str | None
    duration_seconds: float | None
    sample_rate: int | None = Field(description="Of the stored audio (uploads above 16 kHz are stored at 16 kHz)")
    created_at: datetime
    deleted_at: datetime | None
