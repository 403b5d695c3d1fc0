"""Per-turn latency of a call, whatever carries it (carrier media streams, the console): from the end of the
caller's speech to the first agent audio sent, with the STT, LLM first-token and TTS first-byte parts, reported
to the call's workflow (and, for the console, shown on the caller's page as it happens)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from livekit.agents import AgentSession, MetricsCollectedEvent, UserStateChangedEvent
from livekit.agents.metrics import EOUMetrics, LLMMetrics, TTSMetrics
from livekit.agents.voice import io

from models import calls as c
from voice.call_control import TemporalCallControl
from voice.runtime import END_OF_SPEECH_SILENCE

log = logging.getLogger(__name__)

TTS_METRICS_WAIT = 5.0


class TurnTimer:
    def __init__(
        self,
        session: AgentSession,
        audio_out: io.AudioOutput,
        control: TemporalCallControl,
        on_turn: Callable[[c.TurnMetrics], None] | None = None,
    ) -> None:
        self._on_turn = on_turn
        self._control = control
        self._speech_ended_at: float | None = None
        self._parts: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._tts_reported = asyncio.Event()
        session.on("user_state_changed", self._on_user_state)
        session.on("metrics_collected", self._on_metrics)
        audio_out.on("playback_started", self._on_agent_audio)

    def _on_user_state(self, event: UserStateChangedEvent) -> None:
        if event.new_state == "speaking":
            # A new turn: the metrics from here on are its reply's. A speculative reply is made while the caller
            # is still "speaking" (in the VAD's end-of-speech silence), so its metrics come before the turn ends.
            self._parts = {}
            self._tts_reported.clear()
        elif event.old_state == "speaking":
            # VAD reports the end after a stretch of silence: the speech itself ended that much earlier.
            self._speech_ended_at = time.monotonic() - END_OF_SPEECH_SILENCE

    def _on_metrics(self, event: MetricsCollectedEvent) -> None:
        metrics = event.metrics
        if isinstance(metrics, EOUMetrics):
            self._parts.setdefault("stt_ms", metrics.transcription_delay * 1000)
        elif isinstance(metrics, LLMMetrics):
            self._parts.setdefault("llm_ttft_ms", metrics.ttft * 1000)
        elif isinstance(metrics, TTSMetrics):
            self._parts.setdefault("tts_ttfb_ms", metrics.ttfb * 1000)
            self._tts_reported.set()

    def _on_agent_audio(self, _event: object) -> None:
        if self._speech_ended_at is None:
            return  # the greeting, or a second segment of the same reply
        latency_ms = (time.monotonic() - self._speech_ended_at) * 1000
        self._speech_ended_at = None
        task = asyncio.ensure_future(self._report(datetime.now(UTC), latency_ms, self._parts))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _report(self, at: datetime, latency_ms: float, parts: dict[str, float]) -> None:
        # livekit reports TTS metrics once the sentence is synthesised, after its first audio went out.
        if "tts_ttfb_ms" not in parts:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._tts_reported.wait(), timeout=TTS_METRICS_WAIT)
        turn = c.TurnMetrics(
            at=at,
            latency_ms=round(latency_ms, 1),
            stt_ms=_ms(parts.get("stt_ms")),
            llm_ttft_ms=_ms(parts.get("llm_ttft_ms")),
            tts_ttfb_ms=_ms(parts.get("tts_ttfb_ms")),
        )
        if self._on_turn is not None:
            self._on_turn(turn)
        try:
            await self._control.call.turn_metrics(turn)
        except Exception:  # metrics never disturb the call
            log.warning("turn metrics not recorded", exc_info=True)

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2)


def _ms(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None
