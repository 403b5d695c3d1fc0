"""Recording consent on the agent's side of a call (``models/consent.py``): before its greeting, the agent plays
the space's announcement; where consent is required it then listens for DTMF 1 or a spoken yes (the caller's
answer is consumed: the agent does not reply to it). The outcome goes to the call's workflow, which says whether
to record; the transport starts its recorder (media streams) or the workflow its egress (LiveKit) only then.

A caller's words heard while the announcement plays are not an answer (the prompt is not interruptible); keys
pressed during it are.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from livekit.agents import AgentSession

from models.consent import (
    CONSENT_DIGIT,
    CONSENT_WAIT_SECONDS,
    ConsentOutcome,
    ConsentRecorded,
    ConsentReport,
    ConsentRequest,
    RecordingConsent,
    spoken_answer,
)
from workflows.call_client import CallActionError, CallRef

log = logging.getLogger(__name__)

Report = Callable[[ConsentReport], Awaitable[ConsentRecorded]]


class ConsentGate:
    def __init__(
        self,
        request: ConsentRequest,
        report: Report,
        *,
        on_record: Callable[[], None] | None = None,
        wait: float = CONSENT_WAIT_SECONDS,
    ) -> None:
        self.request = request
        self._report = report
        self._on_record = on_record
        self._wait = wait
        self._answer: asyncio.Future[tuple[bool, str]] | None = None
        self.outcome: ConsentOutcome | None = None

    @property
    def listening(self) -> bool:
        return self._answer is not None and not self._answer.done()

    def digit(self, digits: str) -> None:
        """A key the caller pressed: 1 consents, any other key refuses (only while the gate listens)."""
        if self.listening and digits:
            assert self._answer is not None
            self._answer.set_result((digits[0] == CONSENT_DIGIT, "dtmf"))

    def heard(self, text: str) -> bool:
        """A caller's turn: True when the gate took it (it is listening), so the agent does not answer it."""
        if not self.listening:
            return False
        answer = spoken_answer(text)
        if answer is not None:
            assert self._answer is not None
            self._answer.set_result((answer, "speech"))
        return True

    async def run(self, session: AgentSession) -> ConsentOutcome:
        """Play the announcement, wait for the answer if one is needed, report; the outcome (PENDING when the
        announcement was cut short: nothing is reported and the recording never starts)."""
        if self.request.mode is RecordingConsent.REQUIRE:
            self._answer = asyncio.get_running_loop().create_future()
        played = session.say(self.request.announcement, allow_interruptions=False)
        await played  # until the caller has heard it
        if played.interrupted:  # the call ended (or the session closed) before it was heard: nothing is allowed
            log.info("recording announcement not played out")
            if self._answer is not None:
                self._answer.cancel()
            return ConsentOutcome.PENDING
        if self.request.mode is RecordingConsent.ANNOUNCE:
            outcome, by = ConsentOutcome.ANNOUNCED, "announcement"
        else:
            assert self._answer is not None
            try:
                yes, by = await asyncio.wait_for(asyncio.shield(self._answer), timeout=self._wait)
            except TimeoutError:
                yes, by = False, "timeout"
                self._answer.cancel()
            outcome = ConsentOutcome.GIVEN if yes else ConsentOutcome.REFUSED
        self.outcome = outcome
        try:
            recorded = await self._report(ConsentReport(outcome, by))
        except CallActionError as exc:  # the call ended meanwhile: nothing to record
            log.info("recording consent not taken", extra={"reason": exc.reason})
            return outcome
        log.info("recording consent", extra={"outcome": outcome.value, "by": by, "record": recorded.record})
        if recorded.record and self._on_record is not None:
            self._on_record()
        return outcome


async def consent_gate(call: CallRef) -> ConsentGate | None:
    """The recording announcement/consent the call's workflow waits for before it starts the egress (LiveKit), if
    any: the agent plays it before its greeting."""
    asked = (await call.state()).recording_consent
    if asked is None or asked.outcome is not ConsentOutcome.PENDING:
        return None
    return ConsentGate(ConsentRequest(asked.mode, asked.announcement), call.report_recording_consent)
