from __future__ import annotations

from datetime import datetime

from models.enums import Channel, ConversationStatus, MessageRole
from models.schemas.common import OutSchema, Timestamps


class ConversationOut(Timestamps):
    id: str
    space_id: str
    channel: Channel
    phone_number_id: str | None
    agent_id: str | None
    external_party: str
    status: ConversationStatus
    closed_at: datetime | None


class MessageOut(OutSchema):
    id: str
    conversation_id: str
    call_id: str | None
    role: MessageRole
    source: str
    text: str
    started_at: datetime | None
    ended_at: datetime | None
    created_at: datetime
