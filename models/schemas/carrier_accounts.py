from __future__ import annotations

import re
from typing import Self

from pydantic import Field, SecretStr, model_validator

from models.enums import CarrierProvider
from models.schemas.common import Name, RouteCps, Schema, Timestamps

ACCOUNT_SID_PATTERNS = {CarrierProvider.TWILIO: re.compile(r"AC[0-9a-fA-F]{32}")}  # matched whole


class CarrierAccountCreate(Schema):
    name: Name
    provider: CarrierProvider = CarrierProvider.TWILIO
    account_sid: str = Field(min_length=1, max_length=64)
    auth_token: SecretStr = Field(min_length=8, max_length=256)
    cps: RouteCps = None

    @model_validator(mode="after")
    def _sid_matches_provider(self) -> Self:
        pattern = ACCOUNT_SID_PATTERNS.get(self.provider)
        if pattern and not pattern.fullmatch(self.account_sid):
            raise ValueError(f"account_sid is not a {self.provider} account SID (AC + 32 hex digits)")
        return self


class CarrierAccountUpdate(Schema):
    name: Name | None = None
    auth_token: SecretStr | None = Field(default=None, min_length=8, max_length=256)
    cps: RouteCps = None  # sent as null: the limit is removed; left out: unchanged


class CarrierAccountOut(Timestamps):
    id: str
    space_id: str
    name: str
    provider: CarrierProvider
    account_sid: str
    cps: float | None = None
    has_auth_token: bool = True
