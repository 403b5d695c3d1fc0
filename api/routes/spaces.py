from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import select

from api.crud import apply
from api.deps import Owner, PrincipalDep, SessionDep, Viewer
from api.pagination import CursorQuery, LimitQuery, paginate
from models.schemas.common import Page
from models.schemas.spaces import SpaceCreate, SpaceOut, SpaceUpdate
from models.tables import Space

router = APIRouter(prefix="/v1/spaces", tags=["spaces"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_space(body: SpaceCreate, session: SessionDep, principal: PrincipalDep) -> SpaceOut:
    if not principal.is_platform:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only platform keys create spaces")
    space = Space(
        name=body.name,
        call_settings=body.call_settings.model_dump(),
        recording_consent=body.recording_consent,
        recording_announcement=body.recording_announcement,
        record_hold=body.record_hold,
    )
    session.add(space)
    await session.commit()
    return SpaceOut.model_validate(space)


@router.get("")
async def list_spaces(
    session: SessionDep, principal: PrincipalDep, limit: int = LimitQuery, cursor: str | None = CursorQuery
) -> Page[SpaceOut]:
    stmt = select(Space)
    if not principal.is_platform:
        stmt = stmt.where(Space.id == principal.space_id)
    rows, next_cursor = await paginate(session, stmt, Space, limit, cursor)
    return Page(data=[SpaceOut.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/{space_id}")
async def get_space(ctx: Viewer) -> SpaceOut:
    return SpaceOut.model_validate(ctx.space)


@router.patch("/{space_id}")
async def update_space(body: SpaceUpdate, ctx: Owner, session: SessionDep) -> SpaceOut:
    values = body.model_dump(exclude_unset=True, exclude_none=True)
    apply(ctx.space, values)
    await session.commit()
    return SpaceOut.model_validate(ctx.space)


@router.delete("/{space_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_space(ctx: Owner, session: SessionDep) -> None:
    await session.delete(ctx.space)
    await session.commit()
