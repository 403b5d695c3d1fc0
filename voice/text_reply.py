"""The agent's LLM in text mode: the same config and knowledge base as on a call, its streamed text as the reply
(no audio, and no call-control tools on a text thread)."""

from __future__ import annotations

from collections.abc import Sequence

from livekit.agents import llm

from models.enums import MessageRole
from voice.agent_config import AgentConfig, ContextMessage
from voice.knowledge import KnowledgeBase
from voice.local_llm import build_llm

TEXT_STYLE = "You are answering text messages (SMS): reply in one or two short sentences, plain text."


async def text_reply(config: AgentConfig, history: Sequence[ContextMessage], text: str) -> str:
    """What the agent answers to ``text``, after ``history`` (oldest first; the thread's last messages)."""
    model = build_llm(config, KnowledgeBase(config.knowledge))
    ctx = llm.ChatContext.empty()
    instructions = "\n\n".join(p for p in (config.instructions.strip(), TEXT_STYLE) if p)
    ctx.add_message(role="system", content=instructions)
    for message in history:
        ctx.add_message(role="user" if message.role is MessageRole.CALLER else "assistant", content=message.text)
    if not history or history[-1].text != text:
        ctx.add_message(role="user", content=text)
    parts: list[str] = []
    async with model.chat(chat_ctx=ctx) as stream:
        async for chunk in stream:
            if chunk.delta is not None and chunk.delta.content:
                parts.append(chunk.delta.content)
    return "".join(parts).strip()
