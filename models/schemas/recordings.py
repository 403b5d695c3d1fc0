"""API schemas of recordings (space assets) and of a space's retention policy."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from models.assets import AssetStatus
from models.schemas.common import OutSchema, Schema


class RecordingOut(OutSchema):
    id: str
    space_id: str
    call_id: str | None
    conversation_id: str | None
    status: AssetStatus
    content_type: str
    size_bytes: int | None
    sha256: str | None
    duration_seconds: float | None
    channel_layout: str | None = Field(description='e.g. "stereo:caller,agent": channel 0 is the caller')
    paused_spans: list[tuple[float, float]] = Field(
        description="[start, end] seconds where recording was paused (silence in the file)"
    )
    legal_hold: bool
    retention_until: datetime | None
    error: str | None
    created_at: datetime
    deleted_at: datetime | None


class DownloadUrlOut(Schema):
    url: str
    expires_at: datetime


class LegalHoldIn(Schema):
    legal_hold: bool


class RetentionPolicyIn(Schema):
    recording_days: int | None = Field(
        default=None, ge=1, le=36500, description="Days a recording is kept; null keeps it until deleted"
    )
    transcript_days: int | None = Field(
        default=None, ge=1, le=36500, description="Days transcript messages made from recordings are kept"
    )


class RetentionPolicyOut(RetentionPolicyIn):
    space_id: str
    assets_updated: int = Field(default=0, description="Assets whose deadline this change recomputed")
