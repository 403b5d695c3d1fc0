from __future__ import annotations

from datetime import datetime

from pydantic import Field

from models.enums import Role
from models.schemas.common import Name, OutSchema, Schema


class ApiKeyCreate(Schema):
    name: Name
    role: Role
    person_email: str | None = Field(
        default=None,
        max_length=254,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        description="The person this key belongs to; omit for a service account",
    )


class ApiKeyUpdate(Schema):
    name: Name | None = None
    role: Role | None = None


class ApiKeyOut(OutSchema):
    id: str
    space_id: str | None
    name: str
    role: Role
    prefix: str
    person_email: str | None
    service_account: bool
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The key itself: shown once, only a hash is stored")
