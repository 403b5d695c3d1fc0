from __future__ import annotations

from datetime import datetime
from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator

from models.enums import Codec, ProvisioningStatus, SipTransport
from models.schemas.common import Cidr, Name, OutSchema, RouteCps, Schema, SipAddress, Timestamps

DEFAULT_CODECS = [Codec.PCMU, Codec.PCMA, Codec.TELEPHONE_EVENT]


class SipTrunkFields(Schema):
    name: Name
    sip_address: SipAddress = Field(description="The carrier's SIP server: host or host:port")
    transport: SipTransport = SipTransport.UDP
    auth_username: str | None = Field(default=None, min_length=1, max_length=128)
    auth_password: SecretStr | None = Field(default=None, min_length=1, max_length=256)
    allowed_cidrs: list[Cidr] = Field(default_factory=list, max_length=100)
    codecs: list[Codec] = Field(
        default_factory=lambda: list(DEFAULT_CODECS), min_length=1, description="In order of preference"
    )
    cps: RouteCps = None

    @field_validator("codecs")
    @classmethod
    def _distinct_codecs(cls, codecs: list[Codec]) -> list[Codec]:
        if len(set(codecs)) != len(codecs):
            raise ValueError("codecs must not repeat")
        if codecs == [Codec.TELEPHONE_EVENT]:
            raise ValueError("telephone-event carries DTMF only: add an audio codec")
        return codecs

    @model_validator(mode="after")
    def _authenticated_somehow(self) -> Self:
        if (self.auth_username is None) != (self.auth_password is None):
            raise ValueError("auth_username and auth_password go together")
        if self.auth_username is None and not self.allowed_cidrs:
            raise ValueError("a trunk needs credentials (auth_username/auth_password) or allowed_cidrs")
        return self


class SipTrunkCreate(SipTrunkFields):
    pass


class SipTrunkUpdate(Schema):
    name: Name | None = None
    sip_address: SipAddress | None = None
    transport: SipTransport | None = None
    auth_username: str | None = Field(default=None, max_length=128)
    auth_password: SecretStr | None = Field(default=None, max_length=256)
    allowed_cidrs: list[Cidr] | None = None
    codecs: list[Codec] | None = None
    cps: RouteCps = None  # sent as null: the limit is removed; left out: unchanged


class TrunkProvisioning(OutSchema):
    status: ProvisioningStatus
    error: str | None
    livekit_inbound_trunk_id: str | None
    livekit_outbound_trunk_id: str | None
    livekit_dispatch_rule_id: str | None
    provisioned_at: datetime | None


class SipTrunkOut(Timestamps):
    id: str
    space_id: str
    name: str
    sip_address: str
    transport: SipTransport
    auth_username: str | None
    has_auth_password: bool
    allowed_cidrs: list[str]
    codecs: list[Codec]
    cps: float | None = None
    numbers: list[str]
    provisioning: TrunkProvisioning
