"""Answering-machine detection across process boundaries: the carrier's vocabulary (Twilio's ``AnsweredBy`` of an
``AsyncAmdStatusCallback``) mapped onto :class:`models.enums.AnsweredBy`, and the names of the two sources of a
report. The report itself (``AnsweredByReport``) and the options on a call (``AmdOptions``) are in
:mod:`models.calls`."""

from __future__ import annotations

from models.calls import AnsweredByReport
from models.enums import AnsweredBy

SOURCE_CARRIER = "carrier"  # the carrier's AMD (Twilio AsyncAmd callback)
SOURCE_AUDIO = "audio"  # our detector, on the call's audio (voice.amd)

# Twilio's AnsweredBy values (``MachineDetection=DetectMessageEnd``; ``Enable`` sends machine_start).
TWILIO_ANSWERED_BY: dict[str, AnsweredBy] = {
    "human": AnsweredBy.HUMAN,
    "machine_start": AnsweredBy.MACHINE,
    "machine_end_beep": AnsweredBy.MACHINE,
    "machine_end_silence": AnsweredBy.MACHINE,
    "machine_end_other": AnsweredBy.MACHINE,
    "fax": AnsweredBy.MACHINE,  # not a person: a machine policy applies
    "unknown": AnsweredBy.UNKNOWN,
}
TWILIO_MACHINE_DETECTION = "DetectMessageEnd"  # wait for the greeting's end: a message can follow at once


def carrier_report(answered_by: str, detection_ms: int | None) -> AnsweredByReport:
    """A Twilio AMD result as our report; ``machine_end_beep`` says the beep has just ended."""
    verdict = TWILIO_ANSWERED_BY[answered_by]
    duration = max(0, detection_ms or 0)
    beep_ms = duration if answered_by == "machine_end_beep" else None
    return AnsweredByReport(verdict, duration, SOURCE_CARRIER, beep_ms)
