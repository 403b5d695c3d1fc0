from __future__ import annotations

from pydantic import Field

from models.consent import MAX_ANNOUNCEMENT_CHARS, RecordingConsent
from models.schemas.common import Name, Schema, Timestamps
from models.schemas.sms import SmsSettings


class CallSettings(Schema):
    ringing_timeout_seconds: int = Field(default=45, ge=5, le=300)
    max_call_duration_seconds: int = Field(default=3600, ge=60, le=86_400)
    hold_timeout_seconds: int = Field(default=600, ge=10, le=7200)
    sms: SmsSettings = Field(default_factory=SmsSettings)


# Recording consent (models/consent.py): "none" records as the number's policy says; "announce" plays the
# announcement first; "require" records only after the caller presses 1 or says yes. Empty announcement: default.
Announcement = Field(default=None, max_length=MAX_ANNOUNCEMENT_CHARS)


class SpaceCreate(Schema):
    name: Name
    call_settings: CallSettings = Field(default_factory=CallSettings)
    recording_consent: RecordingConsent = RecordingConsent.NONE
    recording_announcement: str | None = Announcement
    record_hold: bool = False  # False: the recording is paused while the call is on hold


class SpaceUpdate(Schema):
    name: Name | None = None
    call_settings: CallSettings | None = None
    recording_consent: RecordingConsent | None = None
    recording_announcement: str | None = Announcement
    record_hold: bool | None = None


class SpaceOut(Timestamps):
    id: str
    name: str
    call_settings: CallSettings
    recording_consent: RecordingConsent = RecordingConsent.NONE
    recording_announcement: str | None = None
    record_hold: bool = False
