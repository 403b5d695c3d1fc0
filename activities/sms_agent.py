"""The agent's reply to a text message: the agent's config (with the flow's variables) and the thread's recent
messages, answered by its LLM in text mode (:mod:`voice.text_reply`)."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from models import sms as m
from models.secret_box import SecretBox
from voice.agent_config import AgentNotFoundError, load_agent_config, recent_messages
from voice.flow_context import with_flow_variables

log = logging.getLogger(__name__)
HISTORY = 20


class SmsAgentActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], secret_box: SecretBox) -> None:
        self._sessions = sessions
        self._box = secret_box

    @activity.defn
    async def agent_reply(self, request: m.AgentReplyInput) -> m.AgentReply:
        try:
            config = await load_agent_config(self._sessions, request.space_id, request.agent_id, self._box)
            config = with_flow_variables(config, request.variables)
        except AgentNotFoundError as exc:
            raise ApplicationError(str(exc), type="AgentNotFound", non_retryable=True) from exc
        # livekit-agents loads with the first text reply, not in every worker that never sends one (~55 MB)
        from voice.text_reply import text_reply

        history = await recent_messages(self._sessions, request.conversation_id, HISTORY)
        reply = await text_reply(config, history, request.text)
        log.info("sms agent replied", extra={"conversation_id": request.conversation_id, "chars": len(reply)})
        return m.AgentReply(reply)
