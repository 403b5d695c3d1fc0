from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from models.consent import ConsentOutcome, RecordingConsent
from models.enums import AnsweredBy, CallDirection, CallState, EndReason, MachinePolicy, MediaMode
from models.schemas.common import E164, OutSchema, Ref, Schema, TransferTarget

DTMF_DIGITS = r"^[0-9*#A-Dw]{1,64}$"


class AmdCreate(Schema):
    """Answering-machine detection for a placed call: the carrier's (media-stream numbers) and ours on the audio."""

    on_machine: MachinePolicy = Field(default=MachinePolicy.HANGUP, description="continue, hangup or leave_message")
    message: str | None = Field(
        default=None, min_length=1, max_length=1000, description="leave_message: said after the beep, then hang up"
    )
    message_asset_id: Ref | None = Field(
        default=None, description="leave_message: an audio asset of the space (WAV) played after the beep instead"
    )

    @model_validator(mode="after")
    def _message_when_leaving_one(self) -> AmdCreate:
        said = bool(self.message and self.message.strip())
        if self.on_machine is MachinePolicy.LEAVE_MESSAGE and not (said or self.message_asset_id):
            raise ValueError("leave_message needs a message or a message_asset_id")
        return self


class OutboundCallCreate(Schema):
    from_number: E164 = Field(description="One of the space's numbers")
    to_number: E164
    agent_id: Ref | None = Field(default=None, description="Defaults to the agent the from-number routes to")
    amd: AmdCreate | None = Field(default=None, description="Detect answering machines and act on them")


class TransferCreate(Schema):
    target: TransferTarget = Field(description="E.164 number (+14155550100, tel:+1…) or SIP URI (sip:…)")
    mode: Literal["cold", "warm"] = "cold"


class DtmfCreate(Schema):
    digits: str = Field(pattern=DTMF_DIGITS, description="0-9, *, #, A-D; w pauses half a second")


class CallOut(OutSchema):
    id: str
    space_id: str
    workflow_id: str
    direction: CallDirection
    from_number: str
    to_number: str
    state: CallState
    end_reason: EndReason | None
    phone_number_id: str | None
    agent_id: str | None
    conversation_id: str | None
    created_at: datetime
    connected_at: datetime | None
    ended_at: datetime | None


class TimelineEntryOut(OutSchema):
    at: datetime
    event: str
    state: CallState
    previous: CallState | None
    detail: str | None


class ParticipantOut(OutSchema):
    identity: str
    kind: str
    joined_at: datetime
    left_at: datetime | None


class TurnMetricsOut(OutSchema):
    at: datetime
    latency_ms: float
    stt_ms: float | None
    llm_ttft_ms: float | None
    tts_ttfb_ms: float | None


class RecordingConsentOut(OutSchema):
    mode: RecordingConsent
    outcome: ConsentOutcome
    by: str | None = None


class TranscriptionOut(OutSchema):
    asset_id: str
    status: str
    chunks_done: int
    chunks: int = Field(description="0 while the recording is being read")
    messages_written: int


class CallDetail(OutSchema):
    """A call as its workflow sees it now."""

    id: str
    workflow_id: str
    space_id: str | None
    direction: CallDirection
    media_mode: MediaMode
    from_number: str
    to_number: str
    state: CallState
    end_reason: EndReason | None
    timeline: list[TimelineEntryOut]
    participants: list[ParticipantOut]
    agent_id: str | None
    conversation_id: str | None
    room_name: str | None
    recording_status: str
    on_hold: bool
    turns: list[TurnMetricsOut] = Field(description="Per-turn latency: end of caller speech → first agent audio")
    recording_consent: RecordingConsentOut | None = Field(
        default=None, description="The space asks before recording: its mode and the caller's answer"
    )
    transcription: TranscriptionOut | None = Field(
        default=None, description="The recording's transcription: status (started, running, complete, failed)"
    )
    answered_by: AnsweredBy | None = Field(default=None, description="Answering-machine detection's verdict")
    amd_decision_ms: int | None = Field(default=None, description="From answer to the AMD verdict")
    voicemail_left: bool = Field(default=False, description="The AMD message was left on the machine")


class TransferOut(OutSchema):
    ok: bool
    state: CallState
    error: str | None
    sip_status_code: int | None
