"""What a ``telephony worker`` process runs (``--role``): see ``workers/worker.py``."""

from __future__ import annotations

from enum import StrEnum


class WorkerRole(StrEnum):
    CALLS = "calls"  # calls, campaigns, numbers, provisioning, retention, pacers: no speech stack
    SPEECH = "speech"  # SMS threads and transcriptions: livekit-agents, Whisper
    ALL = "all"  # both in one process

    @property
    def holds_calls(self) -> bool:
        return self is not WorkerRole.SPEECH

    @property
    def speaks(self) -> bool:
        return self is not WorkerRole.CALLS
