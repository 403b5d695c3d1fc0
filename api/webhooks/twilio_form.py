"""Twilio's voice, call status, SMS and SMS status webhook forms as typed, bounded models: nothing reaches a
workflow unchecked.

Twilio writes numbers with ASCII digits, ids with fixed patterns and statuses from a short list; anything else is
a forged or broken request and answers 400 with the field and the reason. Patterns are matched whole
(``fullmatch``: ``$`` would let a trailing newline through) over ASCII classes (``\\d`` is every script's digits,
and ``int()`` accepts them too).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Literal, TypeVar

from fastapi import HTTPException, status
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from models.amd import TWILIO_ANSWERED_BY
from models.call_contract import TWILIO_CALL_STATUSES
from models.sms import CARRIER_STATUSES, MAX_BODY_CHARS
from models.twilio_signature import ACCOUNT_SID

CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
ASCII_DIGITS = re.compile(r"[0-9]{1,9}")
# A party: E.164, a SIP URI, "client:name", or a word such as "anonymous"; printable ASCII, bounded.
PARTY = re.compile(r"[\x21-\x7e]{1,256}")
MAX_PARAMS = 200  # Twilio sends ~25 parameters; a form of thousands is not Twilio


def _call_status(value: str) -> str:
    if value not in TWILIO_CALL_STATUSES:  # the carrier's vocabulary, defined once in the call contract
        raise ValueError(f"not a Twilio call status ({', '.join(sorted(TWILIO_CALL_STATUSES))})")
    return value


CallStatus = Annotated[str, Field(max_length=16), AfterValidator(_call_status)]
Direction = Literal["inbound", "outbound-api", "outbound-dial", "trunking-originating", "trunking-terminating"]


def _matching(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"not {what}")
        return value

    return AfterValidator(check)


def _ascii_number(value: object) -> object:
    """'' is absent; otherwise 1 to 9 ASCII digits (Arabic-Indic digits or a thousand digits are refused)."""
    if value == "":
        return None
    if isinstance(value, str) and not ASCII_DIGITS.fullmatch(value):
        raise ValueError("must be 1 to 9 ASCII digits")
    return value


def _blank_is_absent(value: object) -> object:
    return None if value == "" else value


CallSid = Annotated[str, Field(max_length=34), _matching(CALL_SID, "a Twilio call SID (CA + 32 hex digits)")]
AccountSid = Annotated[str, Field(max_length=34), _matching(ACCOUNT_SID, "a Twilio account SID (AC + 32 hex)")]
Party = Annotated[str, Field(max_length=256), _matching(PARTY, "a phone number, SIP URI or client name")]
AsciiNumber = Annotated[int | None, BeforeValidator(_ascii_number)]
SipCode = Annotated[Annotated[int, Field(ge=100, le=699)] | None, BeforeValidator(_ascii_number)]


class _TwilioForm(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    call_sid: CallSid = Field(alias="CallSid")
    account_sid: AccountSid = Field(alias="AccountSid")
    from_number: Annotated[Party | None, BeforeValidator(_blank_is_absent)] = Field(default=None, alias="From")
    to_number: Annotated[Party | None, BeforeValidator(_blank_is_absent)] = Field(default=None, alias="To")
    direction: Annotated[Direction | None, BeforeValidator(_blank_is_absent)] = Field(default=None, alias="Direction")


class VoiceForm(_TwilioForm):
    """The voice webhook: a call reaches one of our numbers (or one we dialed is answered)."""

    from_number: Party = Field(alias="From")
    to_number: Party = Field(alias="To")


class StatusForm(_TwilioForm):
    """A call status callback."""

    call_status: CallStatus = Field(alias="CallStatus")
    sip_response_code: SipCode = Field(default=None, alias="SipResponseCode")
    call_duration: AsciiNumber = Field(default=None, alias="CallDuration")


MESSAGE_SID = re.compile(r"(SM|MM)[0-9a-fA-F]{32}")
MessageSid = Annotated[str, Field(max_length=34), _matching(MESSAGE_SID, "a Twilio message SID (SM/MM + 32 hex)")]


def _message_status(value: str) -> str:
    if value not in CARRIER_STATUSES:
        raise ValueError(f"not a Twilio message status ({', '.join(sorted(CARRIER_STATUSES))})")
    return value


class _MessageForm(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    message_sid: MessageSid = Field(alias="MessageSid")
    account_sid: AccountSid = Field(alias="AccountSid")


class SmsForm(_MessageForm):
    """An SMS/MMS reaching one of our numbers."""

    from_number: Party = Field(alias="From")
    to_number: Party = Field(alias="To")
    body: str = Field(default="", max_length=MAX_BODY_CHARS, alias="Body")
    num_media: AsciiNumber = Field(default=None, alias="NumMedia")


class SmsStatusForm(_MessageForm):
    """A message delivery report."""

    message_status: Annotated[str, Field(max_length=16), AfterValidator(_message_status)] = Field(alias="MessageStatus")
    error_code: AsciiNumber = Field(default=None, alias="ErrorCode")


F = TypeVar("F", bound=BaseModel)


def _parse(model: type[F], params: Mapping[str, str]) -> F:
    if len(params) > MAX_PARAMS:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"more than {MAX_PARAMS} form parameters")
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"]) or "form"
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"{field}: {first['msg']}") from exc


def voice_form(params: Mapping[str, str]) -> VoiceForm:
    return _parse(VoiceForm, params)


def status_form(params: Mapping[str, str]) -> StatusForm:
    return _parse(StatusForm, params)


def sms_form(params: Mapping[str, str]) -> SmsForm:
    return _parse(SmsForm, params)


def sms_status_form(params: Mapping[str, str]) -> SmsStatusForm:
    return _parse(SmsStatusForm, params)


def _twilio_answered_by(value: str) -> str:
    if value not in TWILIO_ANSWERED_BY:
        raise ValueError(f"not a Twilio AnsweredBy ({', '.join(sorted(TWILIO_ANSWERED_BY))})")
    return value


class AmdForm(BaseModel):
    """An answering-machine detection result (``AsyncAmdStatusCallback``)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    call_sid: CallSid = Field(alias="CallSid")
    account_sid: AccountSid = Field(alias="AccountSid")
    answered_by: Annotated[str, Field(max_length=24), AfterValidator(_twilio_answered_by)] = Field(alias="AnsweredBy")
    machine_detection_duration: AsciiNumber = Field(default=None, alias="MachineDetectionDuration")


def amd_form(params: Mapping[str, str]) -> AmdForm:
    return _parse(AmdForm, params)
