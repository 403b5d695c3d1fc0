from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import select

from api.crud import get_in_space
from api.deps import Admin, ResourceId, SessionDep, SpaceContext
from api.pagination import CursorQuery, LimitQuery, paginate
from models.credentials import generate_key
from models.enums import Role
from models.schemas.api_keys import ApiKeyCreate, ApiKeyCreated, ApiKeyOut, ApiKeyUpdate
from models.schemas.common import Page
from models.tables import ApiKey, utcnow

router = APIRouter(prefix="/v1/spaces/{space_id}/api-keys", tags=["api keys"])


def _check_may_grant(ctx: SpaceContext, role: Role) -> None:
    if not ctx.principal.is_platform and not ctx.principal.role.allows(role):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"a '{ctx.principal.role}' key cannot manage '{role}' keys")


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_api_key(body: ApiKeyCreate, ctx: Admin, session: SessionDep) -> ApiKeyCreated:
    _check_may_grant(ctx, body.role)
    new = generate_key()
    key = ApiKey(
        space_id=ctx.space_id,
        name=body.name,
        role=body.role,
        person_email=body.person_email,
        prefix=new.prefix,
        secret_hash=new.secret_hash,
    )
    session.add(key)
    await session.commit()
    return ApiKeyCreated.model_validate({**ApiKeyOut.model_validate(key).model_dump(), "key": new.plaintext})


@router.get("")
async def list_api_keys(
    ctx: Admin, session: SessionDep, limit: int = LimitQuery, cursor: str | None = CursorQuery
) -> Page[ApiKeyOut]:
    stmt = select(ApiKey).where(ApiKey.space_id == ctx.space_id)
    rows, next_cursor = await paginate(session, stmt, ApiKey, limit, cursor)
    return Page(data=[ApiKeyOut.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/{key_id}")
async def get_api_key(key_id: ResourceId, ctx: Admin, session: SessionDep) -> ApiKeyOut:
    return ApiKeyOut.model_validate(await get_in_space(session, ApiKey, ctx.space_id, key_id, "API key"))


@router.patch("/{key_id}")
async def update_api_key(key_id: ResourceId, body: ApiKeyUpdate, ctx: Admin, session: SessionDep) -> ApiKeyOut:
    key = await get_in_space(session, ApiKey, ctx.space_id, key_id, "API key")
    _check_may_grant(ctx, key.role)
    if body.role is not None:
        _check_may_grant(ctx, body.role)
        key.role = body.role
    if body.name is not None:
        key.name = body.name
    await session.commit()
    return ApiKeyOut.model_validate(key)


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_api_key(key_id: ResourceId, ctx: Admin, session: SessionDep) -> None:
    key = await get_in_space(session, ApiKey, ctx.space_id, key_id, "API key")
    _check_may_grant(ctx, key.role)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.commit()
