"""Calls and messages as the stand-in keeps them, and their JSON shapes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tests.twilio_standin.resources import (
    ACTIVE_CALL_STATUSES,
    API_VERSION,
    TERMINAL_CALL_STATUSES,
    formatted,
    now,
    rfc2822,
)


@dataclass
class StreamMove:
    """The call left its media stream: ``action`` (``<Connect action>`` requested) or ``redirect`` (REST)."""

    kind: str
    at: float  # time.monotonic() when the carrier acted
    status: int  # the action's HTTP status (200 for a redirect)
    twiml: str  # what the call went on with


@dataclass
class CallRecord:
    """A call, with what Twilio would hold about it beyond the JSON resource (callbacks, TwiML)."""

    sid: str
    account_sid: str
    to: str
    from_: str
    direction: str = "outbound-api"
    status: str = "queued"
    url: str | None = None
    method: str = "POST"
    twiml: str | None = None
    application_sid: str | None = None
    status_callback: str | None = None
    status_callback_method: str = "POST"
    status_callback_events: list[str] = field(default_factory=lambda: ["completed"])
    timeout: int = 60
    machine_detection: str | None = None
    async_amd: bool = False
    async_amd_status_callback: str | None = None
    async_amd_status_callback_method: str = "POST"
    answered_by: str | None = None  # set once AMD has decided
    phone_number_sid: str | None = None
    params: dict[str, list[str]] = field(default_factory=dict)
    redirects: list[dict[str, str]] = field(default_factory=list)
    stream_moves: list[StreamMove] = field(default_factory=list)  # streams the stand-in plays (streams.py)
    sequence_number: int = 0
    date_created: datetime = field(default_factory=now)
    date_updated: datetime = field(default_factory=now)
    start_time: datetime | None = None
    end_time: datetime | None = None
    duration: int | None = None

    @property
    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}.json"

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_CALL_STATUSES

    def set_status(self, status: str, duration: int | None = None) -> None:
        moment = now()
        if status == "in-progress" and self.start_time is None:
            self.start_time = moment
        if status in TERMINAL_CALL_STATUSES and self.end_time is None:
            self.end_time = moment
            if duration is not None:
                self.duration = duration
            elif self.start_time is not None:
                self.duration = max(0, round((moment - self.start_time).total_seconds()))
            else:
                self.duration = 0
        self.status = status
        self.date_updated = moment

    def to_json(self) -> dict[str, Any]:
        base = self.uri.removesuffix(".json")
        return {
            "account_sid": self.account_sid,
            "annotation": None,
            "answered_by": self.answered_by,
            "api_version": API_VERSION,
            "caller_name": None,
            "date_created": rfc2822(self.date_created),
            "date_updated": rfc2822(self.date_updated),
            "direction": self.direction,
            "duration": None if self.duration is None else str(self.duration),
            "end_time": rfc2822(self.end_time),
            "forwarded_from": None,
            "from": self.from_,
            "from_formatted": formatted(self.from_),
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": self.phone_number_sid,
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": self.sid,
            "start_time": rfc2822(self.start_time),
            "status": self.status,
            "subresource_uris": {
                "notifications": f"{base}/Notifications.json",
                "recordings": f"{base}/Recordings.json",
                "events": f"{base}/Events.json",
                "payments": f"{base}/Payments.json",
                "siprec": f"{base}/Siprec.json",
                "streams": f"{base}/Streams.json",
                "user_defined_messages": f"{base}/UserDefinedMessages.json",
            },
            "to": self.to,
            "to_formatted": formatted(self.to),
            "trunk_sid": None,
            "uri": self.uri,
        }


@dataclass
class MessageRecord:
    """An SMS/MMS message (``Messages``)."""

    sid: str
    account_sid: str
    to: str
    from_: str | None
    body: str
    direction: str = "outbound-api"
    status: str = "queued"
    media_urls: list[str] = field(default_factory=list)
    messaging_service_sid: str | None = None
    status_callback: str | None = None
    error_code: int | None = None
    date_created: datetime = field(default_factory=now)
    date_updated: datetime = field(default_factory=now)
    date_sent: datetime | None = None

    @property
    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json"

    def to_json(self) -> dict[str, Any]:
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": rfc2822(self.date_created),
            "date_sent": rfc2822(self.date_sent),
            "date_updated": rfc2822(self.date_updated),
            "direction": self.direction,
            "error_code": self.error_code,
            "error_message": None,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": str(len(self.media_urls)),
            "num_segments": str(max(1, -(-len(self.body) // 160))),
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {"media": self.uri.replace(".json", "/Media.json")},
            "to": self.to,
            "uri": self.uri,
        }
