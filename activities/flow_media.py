"""What a call's flow asks of the media process carrying its audio, on that process's own task queue (like
``carry_media``): say a prompt, and hand the call to an agent with the flow's variables."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.media_streams import STREAM_NOT_HERE
from models.calls import MEDIA_HEARTBEAT_INTERVAL_SECONDS
from models.flow_calls import FlowAgentStarted, PlayPrompt, PromptPlayed, StartFlowAgent


class FlowStream(Protocol):
    async def play_prompt(self, request: PlayPrompt) -> PromptPlayed:
        """Say the prompt to the caller; returns once it has been heard (or a key cut it off)."""

    async def start_agent(self, request: StartFlowAgent) -> None:
        """Answer the caller with the agent from now on."""


class FlowStreams(Protocol):
    def get(self, stream_id: str) -> object | None: ...


def _stream(streams: FlowStreams, stream_id: str) -> FlowStream:
    stream = streams.get(stream_id)
    if stream is None or not hasattr(stream, "play_prompt"):
        raise ApplicationError("the stream is not carried by this process", type=STREAM_NOT_HERE, non_retryable=True)
    return stream  # type: ignore[return-value]


class FlowMediaActivities:
    def __init__(self, streams: FlowStreams) -> None:
        self._streams = streams

    @activity.defn
    async def play_prompt(self, request: PlayPrompt) -> PromptPlayed:
        stream = _stream(self._streams, request.stream_id)
        playing = asyncio.create_task(stream.play_prompt(request))
        try:
            while not playing.done():
                activity.heartbeat()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(playing), timeout=MEDIA_HEARTBEAT_INTERVAL_SECONDS)
        except asyncio.CancelledError:
            playing.cancel()
            raise
        return playing.result()

    @activity.defn
    async def start_agent(self, request: StartFlowAgent) -> FlowAgentStarted:
        await _stream(self._streams, request.stream_id).start_agent(request)
        return FlowAgentStarted(request.agent_id)
