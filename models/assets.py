"""Space assets (call recordings) and their transcripts: statuses, audit actions, and the I/O types of the
activities and the retention workflow that create, transcribe and delete them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

RECORDING_SOURCE = "recording"  # Message.source of transcript messages made from a stored recording
STEREO_LAYOUT = "stereo:caller,agent"  # channel 0 = caller (left), channel 1 = agent (right)
MONO_MIXED_LAYOUT = "mono:mixed"
WAV = "audio/wav"
OGG = "audio/ogg"

# Activity names (the workflow calls them by these, through the typed activity methods).
STORE_RECORDING = "store_recording"
JOIN_RECORDING_PARTS = "join_recording_parts"
REGISTER_EGRESS_ASSET = "register_egress_asset"
TRANSCRIBE_RECORDING = "transcribe_recording"
FIND_EXPIRED_ASSETS = "find_expired_assets"
DELETE_ASSET = "delete_asset"
DELETE_EXPIRED_TRANSCRIPTS = "delete_expired_transcripts"

TRANSCRIPTION_WORKFLOW = "TranscribeRecording"
RETENTION_WORKFLOW = "Retention"
RETENTION_WORKFLOW_ID = "retention"
RETENTION_SCHEDULE_ID = "retention-daily"


def transcription_workflow_id(asset_id: str) -> str:
    """One transcription per asset: starting it twice reaches the same workflow."""
    return f"transcribe-{asset_id}"


# ApplicationError types
ASSET_NOT_FOUND = "AssetNotFound"
RECORDING_FILE_MISSING = "RecordingFileMissing"
ASSET_NOT_TRANSCRIBABLE = "AssetNotTranscribable"


class AssetStatus(StrEnum):
    RECORDING = "recording"
    STORED = "stored"
    FAILED = "failed"
    DELETED = "deleted"


class AssetAction(StrEnum):
    CREATED = "created"
    DOWNLOADED = "downloaded"
    DELETED = "deleted"
    LEGAL_HOLD_ON = "legal_hold_on"
    LEGAL_HOLD_OFF = "legal_hold_off"


@dataclass
class StoreRecordingInput:
    """A finished local recording file (the media-stream recorder's WAV) to store as the call's asset."""

    space_id: str
    call_id: str
    path: str
    conversation_id: str | None = None
    content_type: str = WAV
    channel_layout: str = STEREO_LAYOUT
    duration_seconds: float | None = None  # read from the WAV header when None
    paused_spans: list[tuple[float, float]] = field(default_factory=list)
    delete_local_file: bool = True
    name: str | None = None  # another recording of the same call (a flow's voicemail): an asset of its own


@dataclass
class JoinRecordingPartsInput:
    """The parts of a call's recording, one per media process that carried it, in the order they were recorded."""

    call_id: str
    parts: list[str]


@dataclass
class JoinedRecordingParts:
    path: str  # one WAV on the call's timeline, on the joining process's disk
    paused_spans: list[tuple[float, float]] = field(default_factory=list)
    joined: int = 0
    missing: int = 0  # parts not on this machine: their time is silence


@dataclass
class StoredAsset:
    asset_id: str
    status: str  # AssetStatus
    size_bytes: int | None
    sha256: str | None
    duration_seconds: float | None
    created: bool  # False: an earlier attempt (or run) had already stored it


@dataclass
class RegisterEgressAssetInput:
    """A LiveKit egress result (egress_ended webhook): where the file went, or why it failed."""

    space_id: str
    call_id: str
    egress_id: str
    location: str | None
    error: str | None = None
    conversation_id: str | None = None
    duration_seconds: float | None = None
    content_type: str = OGG


@dataclass
class TranscribeRecordingInput:
    space_id: str
    asset_id: str
    conversation_id: str
    call_id: str | None = None
    chunk_seconds: float = 60.0
    batch_size: int = 2  # utterances per Whisper call (more was no faster on 2 cores: bench/transcribe.py)


@dataclass
class TranscriptionProgress:
    """Heartbeat details: a retried attempt starts at ``next_chunk`` (earlier chunks' messages are written)."""

    next_chunk: int
    chunks: int
    messages_written: int


@dataclass
class TranscriptionResult:
    asset_id: str
    segments: int
    messages_written: int  # this run; segments already written by an earlier run are not counted
    audio_seconds: float
    speech_seconds: float
    elapsed_seconds: float
    resumed_from_chunk: int
    chunks: int = 0  # the recording's chunks (all of them are transcribed once this is returned)


@dataclass
class TranscriptionWorkflowInput:
    request: TranscribeRecordingInput
    heartbeat_timeout_seconds: float = 30.0
    start_to_close_timeout_seconds: float = 3600.0


@dataclass
class RetentionInput:
    batch_size: int = 200


@dataclass
class FindExpiredInput:
    as_of: datetime
    batch_size: int = 200


@dataclass
class ExpiredAssets:
    asset_ids: list[str]


@dataclass
class DeleteAssetInput:
    asset_id: str
    as_of: datetime
    actor: str = "retention"


@dataclass
class DeletedAsset:
    asset_id: str
    deleted: bool  # False: already deleted, on legal hold, or no longer past its deadline


@dataclass
class DeleteTranscriptsInput:
    as_of: datetime


@dataclass
class DeletedTranscripts:
    messages_deleted: int


@dataclass
class RetentionResult:
    assets_deleted: int
    messages_deleted: int


def retention_deadline(created_at: datetime, days: int | None) -> datetime | None:
    """When an asset made at ``created_at`` expires under a policy keeping it ``days`` (None: never)."""
    return None if days is None else created_at + timedelta(days=days)


# A call's transcription, in its state (CallStateView.transcription): "started" by the call's workflow; the
# API fills in the live figures from the transcription workflow (workflows/transcription_client.py).
TRANSCRIPTION_STARTED = "started"
TRANSCRIPTION_RUNNING = "running"
TRANSCRIPTION_COMPLETE = "complete"
TRANSCRIPTION_FAILED = "failed"


@dataclass
class TranscriptionView:
    asset_id: str
    status: str  # one of the TRANSCRIPTION_* statuses above
    chunks_done: int = 0
    chunks: int = 0  # 0 while not known yet (the recording is being read)
    messages_written: int = 0
