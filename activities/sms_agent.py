"""The agent's reply to a text message: the same agent config, knowledge base and LLM as on a call, in text mode
(the LLM's streamed text is the reply; no audio, and no call-control tools on a text thread)."""

from __future__ import annotations

import logging

from livekit.agents import llm
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from models import sms as m
from models.enums import MessageRole
from models.secret_box import SecretBox
from voice.agent_config import AgentNotFoundError, load_agent_config, recent_messages
from voice.flow_context import with_flow_variables
from voice.knowledge import KnowledgeBase
from voice.local_llm import build_llm

log = logging.getLogger(__name__)
TEXT_STYLE = "You are answering text messages (SMS): reply in one or two short sentences, plain text."
HISTORY = 20


class SmsAgentActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], secret_box: SecretBox) -> None:
        self._sessions = sessions
        self._box = secret_box

    @activity.defn(name=m.AGENT_REPLY)
    async def agent_reply(self, request: m.AgentReplyInput) -> m.AgentReply:
        try:
            config = await load_agent_config(self._sessions, request.space_id, request.agent_id, self._box)
            config = with_flow_variables(config, request.variables)
        except AgentNotFoundError as exc:
            raise ApplicationError(str(exc), type="AgentNotFound", non_retryable=True) from exc
        model = build_llm(config, KnowledgeBase(config.knowledge))
        ctx = llm.ChatContext.empty()
        instructions = "\n\n".join(p for p in (config.instructions.strip(), TEXT_STYLE) if p)
        ctx.add_message(role="system", content=instructions)
        history = await recent_messages(self._sessions, request.conversation_id, HISTORY)
        for message in history:
            ctx.add_message(role="user" if message.role is MessageRole.CALLER else "assistant", content=message.text)
        if not history or history[-1].text != request.text:
            ctx.add_message(role="user", content=request.text)
        parts: list[str] = []
        async with model.chat(chat_ctx=ctx) as stream:
            async for chunk in stream:
                if chunk.delta is not None and chunk.delta.content:
                    parts.append(chunk.delta.content)
        reply = "".join(parts).strip()
        log.info("sms agent replied", extra={"conversation_id": request.conversation_id, "chars": len(reply)})
        return m.AgentReply(reply)
