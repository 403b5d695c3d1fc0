"""The activity a media-stream process runs for each call whose audio it carries, on the process's own task
queue: it heartbeats while the stream lives (so the workflow learns within seconds when the process dies) and
hangs the stream up when the workflow cancels it (the call ended, or moved elsewhere)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from temporalio import activity
from temporalio.exceptions import ApplicationError

from models.calls import (
    MEDIA_HANDED_OVER,
    MEDIA_HEARTBEAT_INTERVAL_SECONDS,
    MEDIA_STREAM_LOST,
    STREAM_HANDED_OVER,
    STREAM_LOST,
    CarryMediaInput,
    MediaCarried,
    RecordingPaused,
    StreamRecordingDone,
    StreamRecordingInput,
)
from models.stream_hold import StreamHeld, StreamHoldInput

log = logging.getLogger(__name__)

STREAM_NOT_HERE = "StreamNotHere"
RECORDING_CLOSE_WAIT = 15.0  # seconds a stream gets to end after its call did, before it is hung up


class LiveStream(Protocol):
    @property
    def ended(self) -> asyncio.Event: ...

    @property
    def ended_by(self) -> str: ...

    async def hang_up(self) -> None:
        """Close the stream from our side."""

    def set_recording_paused(self, paused: bool) -> tuple[float, float] | None:
        """Pause or resume the stream's recording; the paused span once resumed."""

    def set_on_hold(self, on_hold: bool) -> None:
        """Hold: the agent neither hears nor answers the caller; resume: back to the conversation."""

    def hand_over(self) -> bool:
        """This process drains: end carry_media (the workflow moves the call) but keep talking until the carrier
        closes the stream; False if it had already ended."""


class LiveStreams(Protocol):
    def get(self, stream_id: str) -> LiveStream | None: ...

    def paused_spans(self, stream_id: str) -> list[tuple[float, float]]:
        """The paused spans of a stream's finished recording."""


class MediaStreamActivities:
    def __init__(self, streams: LiveStreams) -> None:
        self._streams = streams

    @activity.defn
    async def carry_media(self, request: CarryMediaInput) -> MediaCarried:
        """Runs as long as the stream does, heartbeating; its end (or this process's death) reaches the call."""
        stream = self._streams.get(request.stream_id)
        if stream is None:
            raise ApplicationError(
                "the stream is not carried by this process", type=STREAM_NOT_HERE, non_retryable=True
            )
        try:
            while not stream.ended.is_set():
                activity.heartbeat()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stream.ended.wait(), timeout=MEDIA_HEARTBEAT_INTERVAL_SECONDS)
        except asyncio.CancelledError:
            log.info("call ended or moved: hanging the stream up", extra={"call_id": request.call_id})
            await stream.hang_up()
            raise
        if stream.ended_by == STREAM_HANDED_OVER:
            # This process drains: the workflow redirects the live call to another media process.
            raise ApplicationError("media server draining: handed over", type=MEDIA_HANDED_OVER, non_retryable=True)
        if stream.ended_by == STREAM_LOST:
            # The socket closed without ``stop``: the call is still up, the carrier reports the stream's end.
            raise ApplicationError("stream closed without stop", type=MEDIA_STREAM_LOST, non_retryable=True)
        return MediaCarried(request.stream_id, stream.ended_by)

    @activity.defn
    async def finish_stream_recording(self, request: StreamRecordingInput) -> StreamRecordingDone:
        """Wait until the stream has ended and its recorder closed its file (the call ended: it hangs up soon)."""
        deadline = asyncio.get_running_loop().time() + RECORDING_CLOSE_WAIT
        while (stream := self._streams.get(request.stream_id)) is not None:
            if asyncio.get_running_loop().time() > deadline:
                await stream.hang_up()
                return StreamRecordingDone(closed=False, paused_spans=self._streams.paused_spans(request.stream_id))
            activity.heartbeat()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stream.ended.wait(), timeout=MEDIA_HEARTBEAT_INTERVAL_SECONDS)
            await asyncio.sleep(0.05)  # the stream leaves the registry once its recorder is closed
        return StreamRecordingDone(closed=True, paused_spans=self._streams.paused_spans(request.stream_id))

    @activity.defn
    async def set_recording_paused(self, request: StreamRecordingInput) -> RecordingPaused:
        stream = self._streams.get(request.stream_id)
        if stream is None:
            raise ApplicationError("the stream is not on this process", type=STREAM_NOT_HERE, non_retryable=True)
        span = stream.set_recording_paused(request.paused)
        return RecordingPaused(request.paused, span)

    @activity.defn
    async def set_stream_hold(self, request: StreamHoldInput) -> StreamHeld:
        """Put the stream's caller on hold or take them off it, pausing/resuming its recording as asked."""
        stream = self._streams.get(request.stream_id)
        if stream is None:
            raise ApplicationError("the stream is not on this process", type=STREAM_NOT_HERE, non_retryable=True)
        stream.set_on_hold(request.on_hold)
        span = stream.set_recording_paused(request.on_hold) if request.pause_recording else None
        return StreamHeld(request.on_hold, span)
