from __future__ import annotations

from fastapi import APIRouter, Query
from sqlalchemy import select

from api.crud import get_in_space
from api.deps import ResourceId, SessionDep, Viewer
from api.pagination import CursorQuery, LimitQuery, paginate
from models.enums import Channel, ConversationStatus
from models.schemas.common import Page
from models.schemas.conversations import ConversationOut, MessageOut
from models.tables import Conversation, Message

router = APIRouter(prefix="/v1/spaces/{space_id}/conversations", tags=["conversations"])


@router.get("")
async def list_conversations(
    ctx: Viewer,
    session: SessionDep,
    status: ConversationStatus | None = Query(default=None),
    channel: Channel | None = Query(default=None),
    limit: int = LimitQuery,
    cursor: str | None = CursorQuery,
) -> Page[ConversationOut]:
    stmt = select(Conversation).where(Conversation.space_id == ctx.space_id)
    if status is not None:
        stmt = stmt.where(Conversation.status == status)
    if channel is not None:
        stmt = stmt.where(Conversation.channel == channel)
    rows, next_cursor = await paginate(session, stmt, Conversation, limit, cursor)
    return Page(data=[ConversationOut.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/{conversation_id}")
async def get_conversation(conversation_id: ResourceId, ctx: Viewer, session: SessionDep) -> ConversationOut:
    row = await get_in_space(session, Conversation, ctx.space_id, conversation_id, "conversation")
    return ConversationOut.model_validate(row)


@router.get("/{conversation_id}/messages")
async def list_messages(
    conversation_id: ResourceId,
    ctx: Viewer,
    session: SessionDep,
    limit: int = LimitQuery,
    cursor: str | None = CursorQuery,
) -> Page[MessageOut]:
    await get_in_space(session, Conversation, ctx.space_id, conversation_id, "conversation")
    stmt = select(Message).where(Message.conversation_id == conversation_id, Message.space_id == ctx.space_id)
    rows, next_cursor = await paginate(session, stmt, Message, limit, cursor)
    return Page(data=[MessageOut.model_validate(r) for r in rows], next_cursor=next_cursor)
