"""Who is calling: API key authentication and the space/role checks every route goes through."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from fastapi import HTTPException, status
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.credentials import secret_matches, split_key
from models.enums import Role
from models.tables import ApiKey, Space, utcnow

LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    key_id: str
    space_id: str | None
    role: Role

    @property
    def is_platform(self) -> bool:
        return self.space_id is None


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


async def authenticate(session: AsyncSession, authorization: str | None) -> Principal:
    if not authorization:
        raise unauthorized("missing Authorization header: send 'Authorization: Bearer <api key>'")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise unauthorized("Authorization must be 'Bearer <api key>'")
    parts = split_key(token.strip())
    if parts is None:
        raise unauthorized("malformed API key")
    prefix, secret = parts
    key = await session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None or not secret_matches(secret, key.secret_hash):
        raise unauthorized("invalid API key")
    if key.revoked_at is not None:
        raise unauthorized("API key revoked")
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        key.last_used_at = now
        await session.commit()
    return Principal(key_id=key.id, space_id=key.space_id, role=key.role)


def not_found(what: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"{what} not found")


async def authorize_space(session: AsyncSession, principal: Principal, space_id: str, needed: Role) -> Space:
    """The space, if the principal belongs to it (else 404, as if it did not exist) and holds ``needed``."""
    if not principal.is_platform and principal.space_id != space_id:
        raise not_found("space")
    space = await session.get(Space, space_id)
    if space is None:
        raise not_found("space")
    if not principal.role.allows(needed):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"this action needs role '{needed}' (key has '{principal.role}')"
        )
    return space
