"""Answering-machine detection on a live outbound call: the callee's first seconds go to the detector instead of the
agent, the verdict goes to the call's workflow (``report_answered_by``, source "audio"; the first report of a call
wins, the carrier's or ours), and the call goes on by the workflow's verdict and the call's policy:

- human, unknown, or a machine with policy ``continue``: the callee's audio goes to the agent, which greets;
- machine + ``hangup``: the workflow ends the call (nothing to say);
- machine + ``leave_message``: wait for the beep (or the greeting falling silent), say the message with the agent's
  voice, or play the recorded message (an audio asset of the space) through the same ``say``, uninterruptible,
  then end the call through the workflow (``voicemail_left``).

Transport-neutral: the transport pushes the callee's PCM (:meth:`AmdListener.hears`) and hands over the agent's
session once it has started (:meth:`AmdListener.run`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

import numpy as np
import numpy.typing as npt
from livekit import rtc
from livekit.agents import AgentSession

from models import calls as c
from models.amd import SOURCE_AUDIO
from models.enums import AnsweredBy, CallState, MachinePolicy
from voice.amd.detector import AmdParams, AnsweringMachineDetector
from voice.amd.message_audio import MessageAudio, MessageAudioError, frames_of
from voice.amd.silero_frames import SileroFrames
from workflows.call_client import CallActionError, CallRef

log = logging.getLogger(__name__)

SAY_TIMEOUT = 120.0  # a message longer than this is not waited for


class AmdListener:
    def __init__(
        self,
        call: CallRef,
        options: c.AmdOptions,
        *,
        sample_rate: int = 8000,
        params: AmdParams | None = None,
        message_audio: MessageAudio | None = None,
    ) -> None:
        self._call = call
        self.options = options
        self._message_audio = message_audio  # loads a recorded message (options.message_asset_id)
        vad = SileroFrames(sample_rate)
        self.detector = AnsweringMachineDetector(sample_rate, vad.window, vad.probability, params)
        self.listening = True  # the callee's audio is ours, not the agent's, while this holds
        self.outcome: str | None = None  # "greeted", "hung up", "voicemail left", ...
        self.on_release: Callable[[], object] | None = None  # a transport's own input back on (LiveKit rooms)
        self._decided = asyncio.Event()
        self._cued = asyncio.Event()

    def hears(self, pcm: npt.NDArray[np.int16]) -> bool:
        """The callee's audio; True when it was taken for detection (the agent must not hear it)."""
        if not self.listening:
            return False
        self.detector.push(pcm)
        if self.detector.decision is not None:
            self._decided.set()
        if self.detector.cue is not None:
            self._cued.set()
        return True

    async def run(self, session: AgentSession, greet: Callable[[], object]) -> None:
        """After the agent's session started (without greeting): decide, report, act."""
        await self._decided.wait()
        decision = self.detector.decision
        assert decision is not None
        verdict = decision.answered_by
        report = c.AnsweredByReport(verdict, decision.decision_ms, SOURCE_AUDIO)
        try:
            view = await self._call.report_answered_by(report)
        except CallActionError as exc:
            log.warning("AMD verdict not recorded", extra={"reason": exc.reason})
            view = None
        if view is not None and view.answered_by is not None:
            verdict = view.answered_by  # the first report wins (the carrier may have answered first)
        log.info(
            "AMD decided",
            extra={"answered_by": verdict.value, "decision_ms": decision.decision_ms, "reason": decision.reason},
        )
        if view is not None and view.state is CallState.ENDED:
            self.outcome = "ended"  # machine + hangup: the workflow ended the call
            return
        if verdict is AnsweredBy.MACHINE and self.options.policy is MachinePolicy.HANGUP:
            self.outcome = "ended"
            return
        if verdict is AnsweredBy.MACHINE and self.options.policy is MachinePolicy.LEAVE_MESSAGE:
            if self.options.message or self.options.message_asset_id:
                await self._leave_message(session)
            else:  # nothing to say (the API requires a message; another caller of the contract may not)
                await self._hang_up()
            return
        self.listening = False  # the agent hears the callee from now on
        if self.on_release is not None:
            self.on_release()
        greet()
        self.outcome = "greeted"

    async def _hang_up(self) -> None:
        try:
            await self._call.hangup(c.HangupRequest(by="amd"))
        except CallActionError as exc:
            log.warning("could not hang up on the machine", extra={"reason": exc.reason})
        self.outcome = "ended"

    async def _recorded(self) -> list[rtc.AudioFrame] | None:
        """The recorded message's frames, or None (none named, or it cannot be played: the text is said instead)."""
        asset_id = self.options.message_asset_id
        if asset_id is None or self._message_audio is None:
            return None
        try:
            return await self._message_audio(asset_id)
        except MessageAudioError as exc:
            log.warning("recorded voicemail message not played", extra={"asset_id": asset_id, "reason": str(exc)})
            return None

    async def _leave_message(self, session: AgentSession) -> None:
        self.detector.expect_message()
        if self.detector.cue is not None:
            self._cued.set()
        recorded = asyncio.create_task(self._recorded())  # read while the greeting plays out
        await self._cued.wait()
        cue = self.detector.cue
        assert cue is not None
        frames, text = await recorded, self.options.message or ""
        if frames is None and not text:
            await self._hang_up()
            return
        started = time.monotonic()
        if frames is not None:  # the same path as the text: the session's output, uninterruptible, in the transcript
            label = text or f"[recorded message {self.options.message_asset_id}]"
            handle = session.say(label, audio=frames_of(frames), allow_interruptions=False)
        else:
            handle = session.say(text, allow_interruptions=False)
        await asyncio.wait_for(handle.wait_for_playout(), timeout=SAY_TIMEOUT)
        said_ms = round((time.monotonic() - started) * 1000)
        try:
            await self._call.voicemail_left(c.VoicemailLeft(message_ms=said_ms, after_beep=cue.beep is not None))
        except CallActionError as exc:
            log.warning("could not end the call after the voicemail message", extra={"reason": exc.reason})
        self.outcome = "voicemail left"
        log.info(
            "voicemail message left",
            extra={"beep": cue.beep is not None, "cue_ms": cue.at_ms, "recorded": frames is not None},
        )


async def listen_to(frames: AsyncIterator[rtc.AudioFrameEvent], listener: AmdListener) -> None:
    """Feed a room participant's audio (``rtc.AudioStream`` events, mono PCM16) to ``listener`` until it stops
    listening (LiveKit-carried calls: the agent session's own room input is off meanwhile)."""
    async for event in frames:
        pcm = np.frombuffer(bytes(event.frame.data), dtype="<i2")
        if not listener.hears(pcm):
            return
