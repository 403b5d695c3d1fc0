"""API schemas of SMS: sending a message, threads, and a space's SMS settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AnyHttpUrl, Field

from models.enums import MessageRole
from models.schemas.common import E164, OutSchema, Schema
from models.sms import (
    DEFAULT_HELP_TEXT,
    MAX_BODY_CHARS,
    MAX_MEDIA_URLS,
    DeliveryStatus,
    Encoding,
    SmsDirection,
    SmsThreadState,
)


class SmsSettings(Schema):
    """A space's SMS settings (``call_settings["sms"]``)."""

    messages_per_second: float = Field(
        default=1.0, gt=0, le=100, description="pace of sends per number (all its threads together)"
    )
    burst: int = Field(default=1, ge=1, le=100, description="sends allowed at once before pacing starts")
    idle_timeout_seconds: int = Field(default=86_400, ge=1, le=30 * 86_400, description="idle thread pauses")
    help_text: str = Field(default=DEFAULT_HELP_TEXT, max_length=MAX_BODY_CHARS)
    max_messages_per_run: int = Field(default=200, ge=2, le=10_000, description="continue-as-new bound")

    @classmethod
    def of(cls, call_settings: dict[str, Any] | None) -> SmsSettings:
        return cls.model_validate((call_settings or {}).get("sms") or {})


class MessageSend(Schema):
    from_number: E164 = Field(description="one of the space's SMS-enabled numbers")
    to_number: E164
    body: str = Field(default="", max_length=MAX_BODY_CHARS)
    media_urls: list[AnyHttpUrl] = Field(default_factory=list, max_length=MAX_MEDIA_URLS)


class MessageQueued(OutSchema):
    id: str
    thread_id: str
    conversation_id: str | None
    status: DeliveryStatus
    segments: int
    encoding: Encoding
    position: int


class SmsMessageOut(OutSchema):
    id: str
    conversation_id: str
    role: MessageRole
    direction: SmsDirection | None
    text: str
    delivery_status: DeliveryStatus | None
    error_code: int | None
    carrier_message_sid: str | None
    segments: int | None
    media_urls: list[str] | None
    created_at: datetime


class SmsThreadOut(OutSchema):
    id: str
    phone_number_id: str
    our_number: str
    party: str
    conversation_id: str | None
    last_message_at: datetime | None
    created_at: datetime


class ThreadMessageOut(OutSchema):
    message_id: str
    direction: SmsDirection
    role: MessageRole
    status: DeliveryStatus
    segments: int
    at: datetime
    carrier_message_sid: str | None
    error_code: int | None
    error: str | None


class SmsThreadDetail(SmsThreadOut):
    state: SmsThreadState
    opted_out: bool
    running: bool = Field(description="a run of the thread's workflow is open (else the state is its last)")
    pending: int
    total_messages: int
    runs: int
    recent: list[ThreadMessageOut]
    failures: list[ThreadMessageOut]
