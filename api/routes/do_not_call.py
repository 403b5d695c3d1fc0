"""A space's do-not-call list: numbers its campaigns never dial (checked right before every dial)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from api.auth import not_found
from api.deps import Admin, Operator, ResourceId, SessionDep, Viewer
from api.pagination import CursorQuery, LimitQuery, paginate
from models.schemas.campaigns import DoNotCallCreate, DoNotCallOut
from models.schemas.common import Page
from models.tables import DoNotCall

router = APIRouter(prefix="/v1/spaces/{space_id}/do-not-call", tags=["campaigns"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def add(body: DoNotCallCreate, ctx: Operator, session: SessionDep, response: Response) -> DoNotCallOut:
    """Add a number; adding it again answers 200 with the entry already there (one effect)."""
    query = select(DoNotCall).where(DoNotCall.space_id == ctx.space_id, DoNotCall.e164 == body.e164)
    existing = await session.scalar(query)
    if existing is None:
        session.add(DoNotCall(space_id=ctx.space_id, e164=body.e164, reason=body.reason))
        try:
            await session.commit()
        except IntegrityError:  # added meanwhile by another request
            await session.rollback()
        else:
            return DoNotCallOut.model_validate(await session.scalar(query))
        existing = await session.scalar(query)
    response.status_code = status.HTTP_200_OK
    return DoNotCallOut.model_validate(existing)


@router.get("")
async def list_numbers(
    ctx: Viewer, session: SessionDep, limit: int = LimitQuery, cursor: str | None = CursorQuery
) -> Page[DoNotCallOut]:
    stmt = select(DoNotCall).where(DoNotCall.space_id == ctx.space_id)
    rows, next_cursor = await paginate(session, stmt, DoNotCall, limit, cursor)
    return Page(data=[DoNotCallOut.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.delete("/{entry_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove(entry_id: ResourceId, ctx: Admin, session: SessionDep) -> None:
    row = await session.get(DoNotCall, entry_id)
    if row is None or row.space_id != ctx.space_id:
        raise not_found("do-not-call entry")
    await session.delete(row)
    await session.commit()
