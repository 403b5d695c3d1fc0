"""Call recording through LiveKit egress: activity and signal types, and the statuses a call reports."""

from __future__ import annotations

from dataclasses import dataclass

# recording_status of a call, after "off" and "requested" (models.calls)
RECORDING_ACTIVE = "recording"
RECORDING_PAUSED = "paused"  # a secret is being said: silence in the file over the span
RECORDING_STOPPING = "stopping"
RECORDING_COMPLETE = "complete"
RECORDING_FAILED = "failed"

SIGNAL_RECORDING_UPDATE = "recording_update"


@dataclass
class StartRecordingInput:
    room_name: str
    call_id: str
    space_id: str


@dataclass
class RecordingStarted:
    egress_id: str


@dataclass
class StopRecordingInput:
    egress_id: str


@dataclass
class RecordingStopped:
    stopped: bool  # False: it had already ended


@dataclass
class RecordingUpdate:
    """An egress webhook about the call's recording."""

    egress_id: str
    status: str  # one of the statuses above
    location: str | None = None
    error: str | None = None
