"""The callee's side of outbound calls: what Twilio does on its own after ``POST Calls.json`` — ring, then
busy / no-answer / failed, or answer (fetch the call's ``Url`` for its TwiML, report ``in-progress``), talk for
a while and hang up — each step reported to the call's ``StatusCallback`` exactly as Twilio reports it. A call
the account ends through the API (``Status=completed``) gets its ``completed``/``canceled`` callback too.

Tests set ``dial_plan[to_number]`` (or ``default_script``); calls to numbers without a script stay queued, as
before, for tests that drive them by hand.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tests.twilio_standin.resources import TERMINAL_CALL_STATUSES
from tests.twilio_standin.traffic import CallRecord

if TYPE_CHECKING:
    from tests.twilio_standin.server import TwilioStandIn

log = logging.getLogger(__name__)
OUTCOMES = frozenset({"answered", "busy", "no-answer", "failed"})
POLL_SECONDS = 0.02


@dataclass(frozen=True)
class CallScript:
    outcome: str = "answered"  # answered | busy | no-answer | failed
    ring_seconds: float = 0.2
    talk_seconds: float = 1.0  # answered: how long the callee stays before hanging up

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {sorted(OUTCOMES)}")


async def _until_ended(call: CallRecord, seconds: float) -> bool:
    """Wait ``seconds`` unless the call is ended through the API first (True then)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if not call.active:
            return True
        await asyncio.sleep(POLL_SECONDS)
    return not call.active


async def _report(st: TwilioStandIn, call: CallRecord, status: str) -> None:
    if not call.status_callback:
        return
    event = (
        "completed" if status in TERMINAL_CALL_STATUSES else {"ringing": "ringing", "in-progress": "answered"}[status]
    )
    if event not in call.status_callback_events:
        if status in TERMINAL_CALL_STATUSES:
            st.set_call_status(call.sid, status)
        else:
            call.set_status(status)
        return
    try:
        await st.send_status_callback(call.sid, status)
    except Exception:  # a webhook that fails is Twilio's problem to log, not the dial's
        log.warning("status callback failed", exc_info=True)


async def play(st: TwilioStandIn, call: CallRecord, script: CallScript) -> None:
    """Run one outbound call to its end as the callee and the carrier would."""
    await _report(st, call, "ringing")
    if await _until_ended(call, script.ring_seconds):
        await _report(st, call, call.status)  # the account canceled it while ringing
        return
    if script.outcome != "answered":
        await _report(st, call, script.outcome)
        return
    if call.url:
        params = {
            "CallSid": call.sid,
            "AccountSid": call.account_sid,
            "From": call.from_,
            "To": call.to,
            "CallStatus": "in-progress",
            "Direction": call.direction,
            "ApiVersion": "2010-04-01",
        }
        try:
            await st.post_webhook(call.url, params, st.accounts[call.account_sid], method=call.method)
        except Exception:
            log.warning("voice webhook failed", exc_info=True)
    await _report(st, call, "in-progress")
    if await _until_ended(call, script.talk_seconds):
        await _report(st, call, call.status)  # hung up through the API
        return
    await _report(st, call, "completed")


def start_script(st: TwilioStandIn, call: CallRecord) -> None:
    script = st.dial_plan.get(call.to, st.default_script)
    if script is None:
        return
    task = asyncio.get_running_loop().create_task(play(st, call, script))
    st.call_tasks.add(task)
    task.add_done_callback(st.call_tasks.discard)


def max_simultaneous(calls: list[CallRecord]) -> int:
    """The most calls that were live (created, not yet ended) at any one moment."""
    edges = [(c.date_created, 1) for c in calls] + [(c.end_time, -1) for c in calls if c.end_time is not None]
    live = peak = 0
    for _, delta in sorted(edges, key=lambda e: (e[0], e[1])):  # ends before starts at the same instant
        live += delta
        peak = max(peak, live)
    return peak


def max_in_one_second(times: list[float]) -> int:
    """The most requests in any window of one second (``times`` in seconds, any order)."""
    ordered = sorted(times)
    peak, start = 0, 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= 1.0:
            start += 1
        peak = max(peak, end - start + 1)
    return peak
