from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from models.enums import MediaMode, RecordingPolicy, RouteType
from models.schemas.common import E164, Ref, Schema, Timestamps

WEB_IS_NO_NUMBER_MODE = "media_mode 'web' is for console calls, not for a number (use 'livekit' or 'stream')"


class Routing(Schema):
    """Where calls and messages to the number go."""

    route_type: RouteType = RouteType.AGENT
    agent_id: Ref | None = None
    flow_id: str | None = Field(default=None, max_length=128)
    media_mode: MediaMode = MediaMode.LIVEKIT
    recording_policy: RecordingPolicy = RecordingPolicy.OFF
    sms_enabled: bool = False
    enabled: bool = True
    friendly_name: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _route_target(self) -> Self:
        if self.route_type is RouteType.AGENT and (not self.agent_id or self.flow_id):
            raise ValueError("route_type 'agent' needs agent_id (and no flow_id)")
        if self.route_type is RouteType.FLOW and (not self.flow_id or self.agent_id):
            raise ValueError("route_type 'flow' needs flow_id (and no agent_id)")
        if self.media_mode is MediaMode.WEB:
            raise ValueError(WEB_IS_NO_NUMBER_MODE)
        return self


class PhoneNumberCreate(Routing):
    """Map a number you already hold: to a SIP trunk (a port), or to a number in a carrier account."""

    e164: E164
    sip_trunk_id: Ref | None = None
    carrier_account_id: Ref | None = None
    carrier_number_sid: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _one_connection(self) -> Self:
        if (self.sip_trunk_id is None) == (self.carrier_account_id is None):
            raise ValueError("give exactly one of sip_trunk_id or carrier_account_id")
        if self.media_mode is MediaMode.STREAM and self.carrier_account_id is None:
            raise ValueError("media_mode 'stream' needs a carrier account (carrier media streams)")
        return self


class PhoneNumberPurchase(Routing):
    """Buy a number through a carrier account: a given number, or the first available in an area code."""

    carrier_account_id: Ref
    e164: E164 | None = None
    area_code: str | None = Field(default=None, pattern=r"^[0-9]{3}$")
    iso_country: str = Field(default="US", pattern=r"^[A-Z]{2}$")

    @model_validator(mode="after")
    def _what_to_buy(self) -> Self:
        if (self.e164 is None) == (self.area_code is None):
            raise ValueError("give exactly one of e164 or area_code")
        return self


class PhoneNumberPort(Routing):
    """Port a number in: it reaches us over one of the space's SIP trunks."""

    e164: E164
    sip_trunk_id: Ref


class PhoneNumberUpdate(Schema):
    route_type: RouteType | None = None
    agent_id: Ref | None = None
    flow_id: str | None = Field(default=None, max_length=128)
    media_mode: MediaMode | None = None
    recording_policy: RecordingPolicy | None = None
    sms_enabled: bool | None = None
    enabled: bool | None = None
    friendly_name: str | None = Field(default=None, max_length=200)
    sip_trunk_id: Ref | None = None

    @model_validator(mode="after")
    def _not_web(self) -> Self:
        if self.media_mode is MediaMode.WEB:
            raise ValueError(WEB_IS_NO_NUMBER_MODE)
        return self


class PhoneNumberOut(Timestamps):
    id: str
    space_id: str
    e164: str
    friendly_name: str | None
    sip_trunk_id: str | None
    carrier_account_id: str | None
    carrier_number_sid: str | None
    route_type: RouteType
    agent_id: str | None
    flow_id: str | None
    media_mode: MediaMode
    recording_policy: RecordingPolicy
    sms_enabled: bool
    enabled: bool
