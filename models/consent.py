"""Recording consent: a space's setting, what the workflow asks the voice runtime to do before it records, and the
outcome the voice runtime reports back (``CallWorkflow.report_recording_consent``, through ``CallRef``).

- ``none``: recorded as the number's policy says, no announcement (the behaviour before consent existed);
- ``announce``: an announcement is played first; the recording starts once it has been played;
- ``require``: the announcement asks for consent; the call is recorded only after the caller presses 1 or says
  yes within ``CONSENT_WAIT_SECONDS`` of it. No consent: never recorded, the call goes on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class RecordingConsent(StrEnum):
    NONE = "none"
    ANNOUNCE = "announce"
    REQUIRE = "require"


class ConsentOutcome(StrEnum):
    PENDING = "pending"  # asked of the voice runtime, not answered yet
    ANNOUNCED = "announced"  # announce: played; recording allowed
    GIVEN = "given"  # require: the caller consented
    REFUSED = "refused"  # require: the caller said no, pressed another key, or said nothing in time

    @property
    def allows_recording(self) -> bool:
        return self in (ConsentOutcome.ANNOUNCED, ConsentOutcome.GIVEN)


DEFAULT_ANNOUNCEMENTS: dict[RecordingConsent, str] = {
    RecordingConsent.ANNOUNCE: "This call is recorded for quality and training purposes.",
    RecordingConsent.REQUIRE: "We would like to record this call for quality and training purposes. "
    "To allow it, press 1 or say yes.",
}
CONSENT_WAIT_SECONDS = 8.0  # after the announcement asking for consent, how long the caller has to answer
CONSENT_DIGIT = "1"
MAX_ANNOUNCEMENT_CHARS = 500
RECORDING_DECLINED = "declined"  # a call's recording_status when the caller did not consent

_YES = re.compile(r"\b(yes|yeah|yep|yup|sure|okay|ok|agree|consent|allow|fine|go ahead)\b")
_NO = re.compile(r"\b(no|nope|don't|do not|not|refuse|decline)\b")


def announcement_for(mode: RecordingConsent, configured: str | None) -> str:
    """The space's own text, or the default for its mode ("" when nothing is announced)."""
    if mode is RecordingConsent.NONE:
        return ""
    text = (configured or "").strip()
    return text or DEFAULT_ANNOUNCEMENTS[mode]


def spoken_answer(text: str) -> bool | None:
    """What a caller's words answer to "may we record?": True (yes), False (no), None (neither)."""
    words = text.lower()
    if _NO.search(words):
        return False
    if _YES.search(words):
        return True
    return None


@dataclass
class ConsentRequest:
    """What the voice runtime must do before recording: play ``announcement`` and, for ``require``, ask."""

    mode: RecordingConsent
    announcement: str


@dataclass
class ConsentView:
    """The call's consent, in its state: the space's mode and the outcome (None while not asked)."""

    mode: RecordingConsent
    outcome: ConsentOutcome
    announcement: str = ""
    by: str | None = None  # how the outcome came: "announcement", "dtmf", "speech", "timeout"


@dataclass
class ConsentReport:
    """The voice runtime's report of the consent outcome (update ``report_recording_consent``)."""

    outcome: ConsentOutcome
    by: str  # "announcement", "dtmf", "speech" or "timeout"


@dataclass
class ConsentRecorded:
    record: bool  # start recording now (the outcome allows it and the call wants to be recorded)
    outcome: ConsentOutcome
