"""What a phone agent needs to know about itself, read from the space's ``Agent`` row at call start.

The call set-up (``voice/call_setup.py``) loads an :class:`AgentConfig` once per call from the dispatch metadata
(``models.call_contract.DispatchMetadata``) and builds the agent from it; nothing here keeps a database session
open during the call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.enums import MessageRole
from models.secret_box import SecretBox
from models.tables import Agent, Message

LOCAL_KB = "local-kb"
OPENAI_COMPATIBLE = "openai-compatible"


class AgentNotFoundError(LookupError):
    """The dispatch names an agent that does not exist in that space."""


@dataclass(frozen=True)
class KnowledgeEntry:
    title: str
    content: str


@dataclass(frozen=True)
class AgentConfig:
    id: str
    space_id: str
    name: str
    instructions: str = ""
    greeting: str = ""
    knowledge: tuple[KnowledgeEntry, ...] = ()
    voice: str = "heart"
    stt_provider: str = "local-whisper"
    tts_provider: str = "local-hibari"
    llm_provider: str = LOCAL_KB
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = field(default=None, repr=False)
    transfer_target: str | None = None  # default destination of a transfer ("+1415...", "sip:desk@pbx")


def knowledge_entries(raw: list[Any] | None) -> tuple[KnowledgeEntry, ...]:
    """The row's ``knowledge_base`` JSON ([{title, content}, ...]); malformed items are skipped."""
    entries: list[KnowledgeEntry] = []
    for item in raw or []:
        if isinstance(item, dict) and isinstance(item.get("content"), str) and item["content"].strip():
            entries.append(KnowledgeEntry(str(item.get("title") or "").strip(), item["content"].strip()))
    return tuple(entries)


async def load_agent_config(
    sessions: async_sessionmaker[AsyncSession],
    space_id: str,
    agent_id: str,
    secret_box: SecretBox | None,
    *,
    transfer_target: str | None = None,
) -> AgentConfig:
    """Read the agent (always filtered by its space) and decrypt its LLM key.

    ``transfer_target``: where "speak to a person" goes when the caller names no number; overrides the
    agent's own ``transfer_target``. A stored LLM key with no ``secret_box`` to open it raises,
    rather than silently calling the endpoint without a key."""
    async with sessions() as session:
        agent = await session.scalar(sa.select(Agent).where(Agent.id == agent_id, Agent.space_id == space_id))
        if agent is None:
            raise AgentNotFoundError(f"agent {agent_id} not found in space {space_id}")
    api_key: str | None = None
    if agent.llm_api_key_encrypted:
        if secret_box is None:
            raise ValueError("the agent's LLM key is encrypted but no SecretBox was given")
        api_key = secret_box.decrypt(agent.llm_api_key_encrypted)
    return AgentConfig(
        id=agent.id,
        space_id=agent.space_id,
        name=agent.name,
        instructions=agent.instructions or "",
        greeting=agent.greeting or "",
        knowledge=knowledge_entries(agent.knowledge_base),
        voice=agent.voice,
        stt_provider=agent.stt_provider,
        tts_provider=agent.tts_provider,
        llm_provider=agent.llm_provider,
        llm_base_url=agent.llm_base_url,
        llm_model=agent.llm_model,
        llm_api_key=api_key,
        transfer_target=transfer_target or agent.transfer_target or None,
    )


@dataclass(frozen=True)
class ContextMessage:
    role: MessageRole
    text: str


async def recent_messages(
    sessions: async_sessionmaker[AsyncSession], conversation_id: str, limit: int = 20
) -> list[ContextMessage]:
    """The conversation's last ``limit`` caller/agent messages, oldest first (earlier calls, SMS, ...)."""
    query = (
        sa.select(Message.role, Message.text)
        .where(
            Message.conversation_id == conversation_id,
            Message.role.in_([MessageRole.CALLER, MessageRole.AGENT]),
        )
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(limit)
    )
    async with sessions() as session:
        rows = (await session.execute(query)).all()
    return [ContextMessage(MessageRole(role), text) for role, text in reversed(rows)]
