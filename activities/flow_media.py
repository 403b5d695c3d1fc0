"""What a call's flow asks of the media process carrying its audio, on that process's own task queue (like
``carry_media``): say a prompt, and hand the call to an agent with the flow's variables."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.media_streams import STREAM_NOT_HERE
from models.calls import MEDIA_HEARTBEAT_INTERVAL_SECONDS
from models.flow_calls import (
    FlowAgentStarted,
    PlayPrompt,
    PromptPlayed,
    RecordVoicemail,
    StartFlowAgent,
    VoicemailRecorded,
)

T = TypeVar("T")


class FlowStream(Protocol):
    async def play_prompt(self, request: PlayPrompt) -> PromptPlayed:
        """Say the prompt to the caller; returns once it has been heard (or a key cut it off)."""

    async def start_agent(self, request: StartFlowAgent) -> None:
        """Answer the caller with the agent from now on."""

    async def record_voicemail(self, request: RecordVoicemail) -> VoicemailRecorded:
        """Record the caller's message into a WAV on this process."""


class FlowStreams(Protocol):
    def get(self, stream_id: str, /) -> FlowStream | None:
        """The flow of a call whose audio this process carries (a media stream, a console socket)."""


def _stream(streams: FlowStreams, stream_id: str) -> FlowStream:
    flow = streams.get(stream_id)
    if flow is None:
        raise ApplicationError("the stream is not carried by this process", type=STREAM_NOT_HERE, non_retryable=True)
    return flow


async def _heartbeating(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work``, heartbeating meanwhile (the workflow learns within seconds if this process dies)."""
    task = asyncio.create_task(work)
    try:
        while not task.done():
            activity.heartbeat()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), timeout=MEDIA_HEARTBEAT_INTERVAL_SECONDS)
    except asyncio.CancelledError:
        task.cancel()
        raise
    return task.result()


class FlowMediaActivities:
    def __init__(self, streams: FlowStreams) -> None:
        self._streams = streams

    @activity.defn
    async def play_prompt(self, request: PlayPrompt) -> PromptPlayed:
        return await _heartbeating(_stream(self._streams, request.stream_id).play_prompt(request))

    @activity.defn
    async def record_voicemail(self, request: RecordVoicemail) -> VoicemailRecorded:
        return await _heartbeating(_stream(self._streams, request.stream_id).record_voicemail(request))

    @activity.defn
    async def start_agent(self, request: StartFlowAgent) -> FlowAgentStarted:
        await _stream(self._streams, request.stream_id).start_agent(request)
        return FlowAgentStarted(request.agent_id)
