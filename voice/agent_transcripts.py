"""Caller transcripts and agent replies appended to the conversation as they happen.

``record_transcripts(session, sink)`` subscribes to the ``AgentSession``'s ``conversation_item_added`` event
(emitted once per finished user turn and per agent reply, with what was actually said when interrupted) and
hands each message to a :class:`TranscriptSink`, in order, from one background task so the event handler
never blocks the audio loop. :class:`DbTranscriptSink` writes ``Message`` rows (source "voice", the call id,
a dedupe key per chat item, so a replayed event is stored once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from livekit.agents import AgentSession, llm
from livekit.agents.voice.events import ConversationItemAddedEvent
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.enums import MessageRole
from models.tables import Message

log = logging.getLogger(__name__)

VOICE_SOURCE = "voice"


@dataclass(frozen=True)
class TranscriptLine:
    role: MessageRole  # CALLER or AGENT
    text: str
    item_id: str  # the chat item's id: unique within the session
    at: datetime
    interrupted: bool = False


class TranscriptSink(Protocol):
    async def append(self, line: TranscriptLine) -> None: ...


class DbTranscriptSink:
    """Appends lines to the conversation as ``Message`` rows (nothing when the call has no conversation)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        space_id: str,
        conversation_id: str | None,
        call_id: str,
    ) -> None:
        self._sessions = sessions
        self.space_id = space_id
        self.conversation_id = conversation_id
        self.call_id = call_id

    def dedupe_key(self, line: TranscriptLine) -> str:
        return f"voice:{self.call_id}:{line.item_id}"[:200]

    async def append(self, line: TranscriptLine) -> None:
        if self.conversation_id is None:
            return
        message = Message(
            space_id=self.space_id,
            conversation_id=self.conversation_id,
            call_id=self.call_id,
            role=line.role,
            source=VOICE_SOURCE,
            text=line.text,
            dedupe_key=self.dedupe_key(line),
            created_at=line.at,
        )
        async with self._sessions() as session:
            session.add(message)
            try:
                await session.commit()
            except IntegrityError:  # already stored (same dedupe key)
                await session.rollback()


def transcript_line(item: object) -> TranscriptLine | None:
    """A caller or agent chat message with text, as a transcript line (other items: ``None``)."""
    if not isinstance(item, llm.ChatMessage) or item.role not in ("user", "assistant"):
        return None
    text = (item.text_content or "").strip()
    if not text:
        return None
    role = MessageRole.CALLER if item.role == "user" else MessageRole.AGENT
    return TranscriptLine(role, text, item.id, datetime.fromtimestamp(item.created_at, UTC), item.interrupted)


class TranscriptRecorder:
    """Feeds a session's messages to a sink in order. ``aclose()`` stops listening and flushes."""

    def __init__(self, session: AgentSession, sink: TranscriptSink) -> None:
        self._session = session
        self._sink = sink
        self._queue: asyncio.Queue[TranscriptLine | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._drain(), name="transcript-recorder")
        self._closed = False
        session.on("conversation_item_added", self._on_item)

    def _on_item(self, event: ConversationItemAddedEvent) -> None:
        line = transcript_line(event.item)
        if line is not None and not self._closed:
            self._queue.put_nowait(line)

    async def _drain(self) -> None:
        while (line := await self._queue.get()) is not None:
            try:
                await self._sink.append(line)
            except Exception:  # a lost line must not stop the call; later lines still go in
                log.exception("could not store a transcript line", extra={"item_id": line.item_id})
            finally:
                self._queue.task_done()
        self._queue.task_done()

    async def flush(self) -> None:
        """Wait until every line received so far is stored."""
        await self._queue.join()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(KeyError, ValueError):
            self._session.off("conversation_item_added", self._on_item)
        self._queue.put_nowait(None)
        await self._task


def record_transcripts(session: AgentSession, sink: TranscriptSink) -> TranscriptRecorder:
    """Append every caller transcript and agent reply of ``session`` to ``sink`` as it happens."""
    return TranscriptRecorder(session, sink)
