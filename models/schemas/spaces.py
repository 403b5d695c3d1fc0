from __future__ import annotations

from pydantic import Field

from models.schemas.common import Name, Schema, Timestamps
from models.schemas.sms import SmsSettings


class CallSettings(Schema):
    ringing_timeout_seconds: int = Field(default=45, ge=5, le=300)
    max_call_duration_seconds: int = Field(default=3600, ge=60, le=86_400)
    hold_timeout_seconds: int = Field(default=600, ge=10, le=7200)
    sms: SmsSettings = Field(default_factory=SmsSettings)


class SpaceCreate(Schema):
    name: Name
    call_settings: CallSettings = Field(default_factory=CallSettings)


class SpaceUpdate(Schema):
    name: Name | None = None
    call_settings: CallSettings | None = None


class SpaceOut(Timestamps):
    id: str
    name: str
    call_settings: CallSettings
