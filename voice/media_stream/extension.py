"""Serves carrier media streams: the router, the process's voice runtime, and the Temporal worker on the
process's own task queue where calls hold their ``carry_media`` activities. ``telephony media`` runs it in an app
of its own; tests compose it into the API app."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from temporalio.worker import Worker

from activities.flow_media import FlowMediaActivities
from activities.media_streams import MediaStreamActivities
from activities.recording_assets import RecordingAssetActivities
from storage import build_store
from voice.flow_audio import PromptAudio
from voice.media_stream.router import router
from voice.runtime import VoiceRuntime

log = logging.getLogger(__name__)


def media_task_queue(base: str) -> str:
    """This process's own queue (one per process: a call's carry_media must reach the process holding its stream)."""
    return f"{base}-media-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class MediaStreamExtension:
    router = router

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        state = app.state
        calls = await state.temporal.calls()
        runtime = VoiceRuntime(
            state.settings, state.sessions, calls, state.secret_box, media_queue=media_task_queue(calls.task_queue)
        )
        state.voice = runtime
        streams = MediaStreamActivities(runtime.streams)
        # A flow's prompts and hand-off, on the stream's process. A stream is listed before it attaches; its flow
        # only once the attach has been answered (the first prompt may come before).
        flows = FlowMediaActivities(runtime.flows, attaching=lambda sid: runtime.streams.get(sid) is not None)
        # Recordings are written on this process's disk: they are stored from here, by the same activity.
        store = build_store(state.settings)
        recordings = RecordingAssetActivities(state.sessions, store)
        runtime.prompt_audio = PromptAudio(state.sessions, store)
        worker = Worker(
            calls.temporal,
            task_queue=runtime.media_queue,
            activities=[
                streams.carry_media,
                streams.finish_stream_recording,
                streams.set_recording_paused,
                streams.set_stream_hold,
                recordings.store_recording,
                recordings.join_recording_parts,
                flows.play_prompt,
                flows.start_agent,
                flows.record_voicemail,
            ],
            max_concurrent_activities=1000,  # one long-lived heartbeating activity per call carried here
        )
        # Models load before the process takes calls (it answers nothing until then, so load balancers and
        # `telephony dev` wait): loading holds the CPU for seconds, and a call's carry_media heartbeat must not
        # stall behind it.
        await runtime.warm_up()
        carrying = asyncio.create_task(worker.run())
        log.info("media streams served", extra={"task_queue": runtime.media_queue})
        try:
            yield
        finally:
            await worker.shutdown()
            await asyncio.gather(carrying, return_exceptions=True)
