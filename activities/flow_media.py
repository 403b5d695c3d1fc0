"""What a call's flow asks of the media process carrying its audio, on that process's own task queue (like
``carry_media``): say a prompt, and hand the call to an agent with the flow's variables."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
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
# A stream learns that its call plays a flow when the workflow answers its attach; the workflow schedules the
# first prompt in the same task, so that prompt can reach this process first. It waits this long for the flow.
FLOW_ATTACH_WAIT = 10.0


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


async def _stream(streams: FlowStreams, stream_id: str, attaching: Callable[[str], bool]) -> FlowStream:
    """The stream's flow; if the stream is still attaching here, its flow once the attach has been answered."""
    deadline = asyncio.get_running_loop().time() + FLOW_ATTACH_WAIT
    while (flow := streams.get(stream_id)) is None and attaching(stream_id):
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.02)
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
    def __init__(self, streams: FlowStreams, attaching: Callable[[str], bool] = lambda _: False) -> None:
        """``attaching``: whether this process carries a stream whose attach may not have been answered yet
        (transports that know a call plays a flow before attaching register the flow first)."""
        self._streams = streams
        self._attaching = attaching

    async def _flow(self, stream_id: str) -> FlowStream:
        return await _stream(self._streams, stream_id, self._attaching)

    @activity.defn
    async def play_prompt(self, request: PlayPrompt) -> PromptPlayed:
        return await _heartbeating((await self._flow(request.stream_id)).play_prompt(request))

    @activity.defn
    async def record_voicemail(self, request: RecordVoicemail) -> VoicemailRecorded:
        return await _heartbeating((await self._flow(request.stream_id)).record_voicemail(request))

    @activity.defn
    async def start_agent(self, request: StartFlowAgent) -> FlowAgentStarted:
        await (await self._flow(request.stream_id)).start_agent(request)
        return FlowAgentStarted(request.agent_id)
