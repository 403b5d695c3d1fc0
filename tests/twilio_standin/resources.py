"""Twilio REST (2010-04-01) resources as the stand-in keeps them, and their JSON shapes."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from aiohttp import web

API_VERSION = "2010-04-01"

# Accounts of the ``twilio_standin`` fixture.
TEST_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
TEST_AUTH_TOKEN = "f1e2d3c4b5a697887766554433221100"
OTHER_ACCOUNT_SID = "AC" + "fedcba9876543210" * 2
OTHER_AUTH_TOKEN = "00112233445566778899aabbccddeeff"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
ACTIVE_CALL_STATUSES = frozenset({"queued", "initiated", "ringing", "in-progress"})
TERMINAL_CALL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
NUMBER_TYPES = frozenset({"Local", "TollFree", "Mobile", "National", "Voip", "SharedCost", "MachineToMachine"})
# What the middleware leaves on each request for the handlers.
FORM = web.RequestKey("form", dict[str, str])  # first value of each form parameter
FORM_MULTI = web.RequestKey("form_multi", dict[str, list[str]])  # every value (StatusCallbackEvent…)
ACCOUNT_SID = web.RequestKey("account_sid", str)  # the authenticated account
_LETTERS = {"2": "abc", "3": "def", "4": "ghi", "5": "jkl", "6": "mno", "7": "pqrs", "8": "tuv", "9": "wxyz"}
_KEYPAD = {letter: digit for digit, letters in _LETTERS.items() for letter in letters}


def new_sid(prefix: str) -> str:
    """A Twilio SID: two-letter prefix and 32 lowercase hex digits."""
    return prefix + secrets.token_hex(16)


def now() -> datetime:
    return datetime.now(UTC)


def rfc2822(moment: datetime | None) -> str | None:
    """Twilio's date format: ``Tue, 14 Jun 2022 16:32:55 +0000``."""
    return None if moment is None else format_datetime(moment.astimezone(UTC))


def formatted(number: str) -> str:
    """``(415) 555-0100`` for NANP numbers, the number itself otherwise."""
    if number.startswith("+1") and len(number) == 12:
        return f"({number[2:5]}) {number[5:8]}-{number[8:]}"
    return number


def contains_pattern(value: str) -> re.Pattern[str] | None:
    """Twilio's ``Contains`` filter: digits, letters (keypad) and ``*`` for any digit; None if invalid."""
    cleaned = value.strip().lstrip("+").lower()
    if len(cleaned) < 2 or not re.fullmatch(r"[0-9a-z*]+", cleaned):
        return None
    return re.compile("".join(r"\d" if c == "*" else _KEYPAD.get(c, c) for c in cleaned))


def error_body(status: int, code: int, message: str) -> dict[str, Any]:
    """Twilio's JSON error document."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


@dataclass
class AvailableNumber:
    """One number of the carrier's inventory, as ``AvailablePhoneNumbers`` lists it."""

    phone_number: str
    iso_country: str = "US"
    number_type: str = "Local"
    region: str | None = None
    locality: str | None = None
    postal_code: str | None = None
    rate_center: str | None = None
    lata: str | None = None
    latitude: str | None = None
    longitude: str | None = None
    voice: bool = True
    sms: bool = True
    mms: bool = False
    friendly_name: str | None = None

    @property
    def area_code(self) -> str | None:
        return self.phone_number[2:5] if self.phone_number.startswith("+1") else None

    def to_json(self) -> dict[str, Any]:
        return {
            "friendly_name": self.friendly_name or formatted(self.phone_number),
            "phone_number": self.phone_number,
            "lata": self.lata,
            "locality": self.locality,
            "rate_center": self.rate_center,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "region": self.region,
            "postal_code": self.postal_code,
            "iso_country": self.iso_country,
            "address_requirements": "none",
            "beta": False,
            "capabilities": {"voice": self.voice, "SMS": self.sms, "MMS": self.mms},
        }


def _san_francisco(number: str) -> AvailableNumber:
    return AvailableNumber(
        number, region="CA", locality="San Francisco", postal_code="94103", rate_center="SNFC CNTRL",
        lata="722", latitude="37.775000", longitude="-122.418000", mms=True,
    )  # fmt: skip


def default_inventory() -> list[AvailableNumber]:
    """A handful of fictional numbers (NANP 555-01xx, Ofcom drama range)."""
    return [
        _san_francisco("+14155550100"),
        _san_francisco("+14155550101"),
        _san_francisco("+14155550102"),
        AvailableNumber("+12125550100", region="NY", locality="New York", postal_code="10001"),
        AvailableNumber("+13125550100", region="IL", locality="Chicago", postal_code="60601", sms=False),
        AvailableNumber("+18885550100", number_type="TollFree"),
        AvailableNumber("+442079460100", iso_country="GB", region="London", locality="London", sms=False),
    ]


# Form parameter -> attribute of IncomingNumber, for purchase and update.
NUMBER_FIELDS = {
    "FriendlyName": "friendly_name",
    "VoiceUrl": "voice_url",
    "VoiceMethod": "voice_method",
    "VoiceFallbackUrl": "voice_fallback_url",
    "VoiceFallbackMethod": "voice_fallback_method",
    "VoiceApplicationSid": "voice_application_sid",
    "VoiceCallerIdLookup": "voice_caller_id_lookup",
    "VoiceReceiveMode": "voice_receive_mode",
    "StatusCallback": "status_callback",
    "StatusCallbackMethod": "status_callback_method",
    "SmsUrl": "sms_url",
    "SmsMethod": "sms_method",
    "SmsFallbackUrl": "sms_fallback_url",
    "SmsFallbackMethod": "sms_fallback_method",
    "SmsApplicationSid": "sms_application_sid",
    "TrunkSid": "trunk_sid",
}
METHOD_FIELDS = frozenset(
    {"voice_method", "voice_fallback_method", "status_callback_method", "sms_method", "sms_fallback_method"}
)


@dataclass
class IncomingNumber:
    """A number an account owns (``IncomingPhoneNumbers``)."""

    sid: str
    account_sid: str
    phone_number: str
    friendly_name: str
    capabilities: dict[str, bool]
    iso_country: str = "US"
    region: str | None = None
    locality: str | None = None
    postal_code: str | None = None
    voice_url: str | None = None
    voice_method: str = "POST"
    voice_fallback_url: str | None = None
    voice_fallback_method: str = "POST"
    voice_application_sid: str | None = None
    voice_caller_id_lookup: str | bool = False
    voice_receive_mode: str = "voice"
    status_callback: str | None = None
    status_callback_method: str = "POST"
    sms_url: str | None = None
    sms_method: str = "POST"
    sms_fallback_url: str | None = None
    sms_fallback_method: str = "POST"
    sms_application_sid: str | None = None
    trunk_sid: str | None = None
    date_created: datetime = field(default_factory=now)
    date_updated: datetime = field(default_factory=now)

    @property
    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/IncomingPhoneNumbers/{self.sid}.json"

    def apply(self, form: dict[str, str]) -> None:
        for param, attr in NUMBER_FIELDS.items():
            if param in form:
                value = form[param]
                setattr(self, attr, value.upper() if attr in METHOD_FIELDS else value)
        self.date_updated = now()

    def to_json(self) -> dict[str, Any]:
        return {
            "account_sid": self.account_sid,
            "address_requirements": "none",
            "address_sid": None,
            "api_version": API_VERSION,
            "beta": False,
            "bundle_sid": None,
            "capabilities": dict(self.capabilities),
            "date_created": rfc2822(self.date_created),
            "date_updated": rfc2822(self.date_updated),
            "emergency_address_sid": None,
            "emergency_address_status": "unregistered",
            "emergency_status": "Inactive",
            "friendly_name": self.friendly_name,
            "identity_sid": None,
            "origin": "twilio",
            "phone_number": self.phone_number,
            "sid": self.sid,
            "sms_application_sid": self.sms_application_sid or "",
            "sms_fallback_method": self.sms_fallback_method,
            "sms_fallback_url": self.sms_fallback_url or "",
            "sms_method": self.sms_method,
            "sms_url": self.sms_url or "",
            "status": "in-use",
            "status_callback": self.status_callback or "",
            "status_callback_method": self.status_callback_method,
            "subresource_uris": {"assigned_add_ons": self.uri.replace(".json", "/AssignedAddOns.json")},
            "trunk_sid": self.trunk_sid,
            "uri": self.uri,
            "voice_application_sid": self.voice_application_sid,
            "voice_caller_id_lookup": self.voice_caller_id_lookup in (True, "true", "True"),
            "voice_fallback_method": self.voice_fallback_method,
            "voice_fallback_url": self.voice_fallback_url,
            "voice_method": self.voice_method,
            "voice_receive_mode": self.voice_receive_mode,
            "voice_url": self.voice_url,
        }


@dataclass
class RecordedRequest:
    """One request the stand-in received (recorded before authentication)."""

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    multi: dict[str, list[str]]
    headers: dict[str, str]
    operation: str | None = None
    account_sid: str | None = None  # the authenticated account, None when authentication failed
    status: int | None = None
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))  # pacing checks use it

    def param(self, name: str) -> str | None:
        return self.form.get(name, self.query.get(name))


@dataclass
class InjectedFailure:
    match: str
    status: int
    code: int
    message: str
    remaining: int | None
    method: str | None = None
    after: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    def matches(self, method: str, path: str, operation: str | None) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        return self.match == operation or path.endswith(self.match)


class TwilioFault(Exception):
    """Raised by a handler: answered with Twilio's JSON error document."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return error_body(self.status, self.code, self.message)


def not_found(path: str) -> TwilioFault:
    return TwilioFault(404, 20404, f"The requested resource {path} was not found")
