"""What every voice call in a process shares: database sessions, the typed call client, the secret box, and the
speech models, loaded once and kept warm so no call pays for a model load."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client
from threadpoolctl import threadpool_limits

from models.db import create_engine, session_factory
from models.payloads import DATA_CONVERTER
from models.secret_box import SecretBox
from models.settings import Settings
from storage import BlobStore, build_store
from voice.amd import silero_frames as amd_vad
from voice.flow_audio import PromptAudio
from voice.flow_call import FlowCall
from voice.media_stream.drain import MediaDrain
from voice.speech import build_stt, build_tts, load_vad
from voice.speech.pcm_cache import configure_pcm_cache
from voice.speech.whisper_engine import configure_live_whisper
from voice.spoken_lines import SpokenLines
from voice.streams import StreamRegistry
from workflows.call_client import CallClient

log = logging.getLogger(__name__)
DEFAULT_VOICE = "heart"  # an agent's voice unless it names another (models.schemas.agents)

# A caller's turn ends after this much silence. Silero's default (0.55 s) would be spent before any reply
# work starts; phone callers pause for breath well under it mid-sentence only rarely.
END_OF_SPEECH_SILENCE = 0.3


def one_blas_thread() -> None:
    """Live calls run numpy on small arrays (Whisper's mel filterbank, resampling) from several threads of a process,
    with several such processes per machine: OpenBLAS's own threads only contend with those for the cores.
    bench.voice_capacity, eight calls stopping together: media CPU 2.8 -> 2.2 s per call-minute with one BLAS thread."""
    threadpool_limits(limits=1, user_api="blas")


@dataclass
class VoiceRuntime:
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    calls: CallClient
    secret_box: SecretBox
    engine: AsyncEngine | None = None  # set when this runtime owns its engine (see connect)
    media_queue: str = ""  # this process's own task queue: the workflows hold their carry_media activities there
    streams: StreamRegistry = field(default_factory=lambda: StreamRegistry())
    drain: MediaDrain = field(default_factory=lambda: MediaDrain())  # SIGTERM: no new sockets, calls handed over
    lines: SpokenLines = field(default_factory=lambda: SpokenLines())  # the re-attach line, synthesised once
    # The flows this process plays, by stream id, whatever the transport (media stream, console socket): the
    # flow's media activities find them here.
    flows: dict[str, FlowCall] = field(default_factory=dict)
    prompt_audio: PromptAudio | None = None  # the audio assets flows play (set where flows are played)

    @property
    def recordings_dir(self) -> Path:
        """Where this process records the streams it carries (stored as assets once each call ends)."""
        return self.settings.data_dir / "recordings" / "streams"

    @cached_property
    def store(self) -> BlobStore:
        """Where the space's assets are (a campaign's recorded voicemail message is played from there)."""
        return build_store(self.settings)

    @classmethod
    async def connect(cls, settings: Settings) -> VoiceRuntime:
        """A runtime of its own (a process that is not the API: the LiveKit agent worker's job processes)."""
        engine = create_engine(settings.resolved_database_url)
        box = SecretBox.from_setting(
            settings.secret_keys.get_secret_value() if settings.secret_keys else None, settings.data_dir
        )
        temporal = await Client.connect(
            settings.temporal_address, namespace=settings.temporal_namespace, data_converter=DATA_CONVERTER
        )
        return cls(settings, session_factory(engine), CallClient(temporal, settings.task_queue), box, engine)

    async def aclose(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()

    async def warm_up(self) -> None:
        """Load VAD, Whisper and the default voices now rather than during someone's first call."""

        configure_pcm_cache(self.settings.voice_tts_cache_mb * 1024 * 1024)
        one_blas_thread()
        configure_live_whisper(
            cpu_threads=self.settings.resolved_voice_cpu_threads,
            partials_when_busy=self.settings.voice_partials_when_busy,
        )

        def load() -> None:
            load_vad(min_silence_duration=END_OF_SPEECH_SILENCE)
            for engine in (build_stt("local-whisper"), build_tts("local-hibari"), build_tts("local-espeak")):
                engine.prewarm()
            amd_vad.prewarm()  # answering-machine detection's per-window silero

        await asyncio.to_thread(load)
        if self.settings.reattach_line:  # in the default voice: a call taken over hears it without a synthesis
            await self.lines.audio("local-hibari", DEFAULT_VOICE, self.settings.reattach_line)
        log.info("voice models warm")
