"""Inputs and outputs of ``CallWorkflow``: its start input, signals, updates, query and activities.

Dataclasses (Temporal's default converter); one input and one output type each. The names of signals,
updates and queries are used only by ``workflows/`` (the workflow and its typed client, ``workflows.call_client``);
ids, metadata and the ways a call starts are in :mod:`models.call_contract`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from temporalio.common import SearchAttributeKey, WorkflowIDReusePolicy

from models.assets import TranscriptionView
from models.consent import ConsentRequest, ConsentView, RecordingConsent
from models.enums import (
    AnsweredBy,
    CallDirection,
    CallState,
    EndReason,
    MachinePolicy,
    MediaMode,
    RecordingPolicy,
    RouteType,
)

CALL_WORKFLOW = "CallWorkflow"
# Start (or signal-with-start) calls with this policy: a webhook retried after the call ended must not
# start a second call with the same id; the caller gets WorkflowAlreadyStartedError and answers 200.
CALL_ID_REUSE_POLICY = WorkflowIDReusePolicy.REJECT_DUPLICATE

# Signals: events reported by the carrier or LiveKit (webhooks). Idempotent, order-tolerant.
SIGNAL_CONNECTED = "connected"
SIGNAL_ACTIVE = "active"
SIGNAL_CARRIER_STATUS = "carrier_status"
SIGNAL_DTMF_RECEIVED = "dtmf_received"
SIGNAL_HANGUP_RECEIVED = "hangup_received"
SIGNAL_TURN_METRICS = "turn_metrics"
SIGNAL_AGENT_LEFT = "agent_left"
SIGNAL_SPEECH_RECEIVED = "speech_received"  # what the caller said while a flow listens (its gather steps)
# Updates: actions requested by staff, the API or the agent's tools. Validated before anything is written.
UPDATE_HOLD = "hold"
UPDATE_RESUME = "resume"
UPDATE_TRANSFER = "transfer"
UPDATE_SEND_DTMF = "send_dtmf"
UPDATE_HANGUP = "hangup"
UPDATE_REPORT_ANSWERED_BY = "report_answered_by"  # answering-machine detection (carrier callback or our audio)
UPDATE_VOICEMAIL_LEFT = "voicemail_left"  # LEAVE_MESSAGE: the message was said to the machine; the call ends
# Query
QUERY_GET_STATE = "get_state"

# ApplicationError types.
ILLEGAL_TRANSITION = "IllegalCallTransition"  # an update rejected by its validator (the API answers 409)
CALL_ACTION_FAILED = "CallActionFailed"  # an accepted update whose LiveKit action failed
LIVEKIT_NOT_CONFIGURED = "LiveKitNotConfigured"

# Search attributes upserted on every transition (registered with the server: models.settings).
SA_CALL_STATE = SearchAttributeKey.for_keyword("CallState")
SA_SPACE_ID = SearchAttributeKey.for_keyword("SpaceId")
SA_CALL_DIRECTION = SearchAttributeKey.for_keyword("CallDirection")
SA_PHONE_NUMBER = SearchAttributeKey.for_keyword("PhoneNumber")
SA_CAMPAIGN_ID = SearchAttributeKey.for_keyword("CampaignId")

RECORDING_OFF = "off"
RECORDING_REQUESTED = "requested"


class TransferMode(StrEnum):
    COLD = "cold"  # SIP REFER: the carrier takes the caller to the target, our leg ends
    WARM = "warm"  # dial the target into the room, brief it, then the agent leaves


class ParticipantKind(StrEnum):
    CALLER = "caller"  # the remote party of the call (inbound caller or outbound callee)
    AGENT = "agent"
    TRANSFER_TARGET = "transfer-target"


# ------------------------------------------------------------------ workflow input / output
@dataclass
class StartCall:
    call_id: str
    workflow_id: str
    direction: CallDirection
    from_number: str
    to_number: str
    carrier_call_id: str
    space_id: str | None = None  # known to the webhook from the number; routing confirms it
    phone_number_id: str | None = None
    media_mode: MediaMode = MediaMode.LIVEKIT
    room_name: str | None = None  # LiveKit room of the call (livekit mode); created at start when set
    caller_identity: str | None = None  # LiveKit identity of the remote SIP participant, when known
    agent_id: str | None = None  # outbound calls: the agent to run (else the number's route)
    flow_id: str | None = None  # outbound calls: the flow to run instead of an agent
    campaign_id: str | None = None  # the campaign that placed this call (search attribute CampaignId)
    variables: dict[str, str] = field(default_factory=dict)  # passed to the agent's context / the flow
    amd: AmdOptions | None = None  # outbound calls: detect answering machines and act per the policy


@dataclass
class AmdOptions:
    policy: MachinePolicy = MachinePolicy.HANGUP
    message: str | None = None  # LEAVE_MESSAGE: said after the beep
    message_asset_id: str | None = None  # LEAVE_MESSAGE: this audio asset of the space is played instead (WAV)


@dataclass
class AnsweredByReport:
    """An answering-machine detection result; the first report of a call wins, later ones are ignored."""

    answered_by: AnsweredBy
    decision_ms: int  # from answer to decision
    source: str  # "carrier" (e.g. Twilio AsyncAmd) or "audio" (our detector)
    beep_ms: int | None = None  # when the machine's beep ended, if heard (LEAVE_MESSAGE speaks after it)


@dataclass
class VoicemailLeft:
    """The voice runtime said the call's AMD message to a machine (after its beep, or after its greeting fell
    silent); the call ends with it (timeline ``voicemail_left``, ``CallStateView.voicemail_left``)."""

    message_ms: int  # how long the message played
    after_beep: bool  # False: no beep was heard, the message started once the greeting fell silent


@dataclass
class TimelineEntry:
    at: datetime
    event: str  # e.g. "ringing", "connected", "hold", "transfer_failed", "dtmf_received"
    state: CallState  # the state after the event
    previous: CallState | None = None
    detail: str | None = None


@dataclass
class CallParticipant:
    identity: str
    kind: ParticipantKind
    joined_at: datetime
    left_at: datetime | None = None


@dataclass
class TurnMetrics:
    """One conversational turn, timed by the voice runtime: end of caller speech → first agent audio."""

    at: datetime
    latency_ms: float
    stt_ms: float | None = None  # end of speech → final transcript
    llm_ttft_ms: float | None = None
    tts_ttfb_ms: float | None = None


@dataclass
class CallStateView:
    """What ``get_state`` answers and what the workflow returns when the call has ended."""

    call_id: str
    workflow_id: str
    space_id: str | None
    direction: CallDirection
    media_mode: MediaMode
    from_number: str
    to_number: str
    state: CallState
    end_reason: EndReason | None
    timeline: list[TimelineEntry]
    participants: list[CallParticipant]
    agent_id: str | None
    conversation_id: str | None
    room_name: str | None
    recording_status: str
    dtmf_received: str = ""
    on_hold: bool = False
    turns: list[TurnMetrics] = field(default_factory=list)
    answered_by: AnsweredBy | None = None
    amd_decision_ms: int | None = None
    campaign_id: str | None = None
    recording_consent: ConsentView | None = None  # the space asks for consent before recording (models.consent)
    transcription: TranscriptionView | None = None  # the recording's transcription, once started
    voicemail_left: bool = False  # LEAVE_MESSAGE: the message was said to the machine


# ------------------------------------------------------------------------------- signals
@dataclass
class ConnectedEvent:
    """Media is up: the SIP participant joined the LiveKit room, or the media stream started."""

    at: datetime | None = None
    room_name: str | None = None
    participant_identity: str | None = None


@dataclass
class ActiveEvent:
    """The conversation is live (the agent joined, or the carrier reports the call in progress)."""

    at: datetime | None = None
    agent_identity: str | None = None


@dataclass
class CarrierStatus:
    """A carrier status callback: initiated, ringing, in-progress, completed, busy, no-answer, failed,
    canceled (Twilio's ``CallStatus`` values)."""

    status: str
    at: datetime | None = None
    sip_response_code: int | None = None
    duration_seconds: int | None = None


@dataclass
class DtmfEvent:
    digits: str
    at: datetime | None = None
    participant_identity: str | None = None
    event_id: str | None = None  # the webhook's event id: a redelivered event is recorded once


@dataclass
class SpeechEvent:
    """One utterance of the caller, transcribed by the media process while the call is in a flow."""

    text: str
    event_id: str | None = None  # redelivered: recorded once


@dataclass
class AgentLeft:
    """The agent left the call's room without the call ending (its worker process died): bring a new one in."""

    identity: str
    at: datetime | None = None


@dataclass
class HangupEvent:
    """The remote side, the carrier or LiveKit (room finished) ended the call."""

    reason: EndReason = EndReason.COMPLETED
    at: datetime | None = None
    by: str = "caller"


# ------------------------------------------------------------------------------- updates
@dataclass
class HoldRequest:
    by: str = "staff"


@dataclass
class ResumeRequest:
    by: str = "staff"


@dataclass
class TransferRequest:
    target: str  # E.164 number ("+14155550100", "tel:+1...") or a SIP URI ("sip:desk@pbx.example.com")
    mode: TransferMode = TransferMode.COLD
    by: str = "staff"


@dataclass
class TransferResult:
    ok: bool
    state: CallState
    error: str | None = None
    sip_status_code: int | None = None


@dataclass
class DtmfRequest:
    digits: str  # 0-9, *, #, A-D and "w" (half-second pause)
    by: str = "staff"


@dataclass
class HangupRequest:
    by: str = "staff"
    reason: EndReason | None = None  # default: canceled while ringing, completed afterwards


# ----------------------------------------------------------------------------- activities
@dataclass
class RouteCallInput:
    call_id: str
    direction: CallDirection
    from_number: str
    to_number: str
    space_id: str | None = None
    phone_number_id: str | None = None
    agent_id: str | None = None
    media_mode: MediaMode | None = None  # WEB: a console call may name an agent (or a flow) and no number
    flow_id: str | None = None


@dataclass
class CallRoute:
    accepted: bool
    reason: str | None = None  # why a call is rejected
    space_id: str | None = None
    phone_number_id: str | None = None
    our_number: str | None = None
    route_type: RouteType | None = None
    agent_id: str | None = None
    flow_id: str | None = None
    media_mode: MediaMode | None = None
    recording_policy: RecordingPolicy = RecordingPolicy.OFF
    outbound_trunk_id: str | None = None  # LiveKit outbound trunk of the number's SIP trunk
    ringing_timeout_seconds: int = 45
    max_call_duration_seconds: int = 3600
    hold_timeout_seconds: int = 600
    recording_consent: RecordingConsent = RecordingConsent.NONE
    recording_announcement: str = ""  # what is played before recording (consent announce/require)
    record_hold: bool = False  # False: the recording is paused while the call is on hold


@dataclass
class OpenCallInput:
    call_id: str
    workflow_id: str
    space_id: str
    direction: CallDirection
    from_number: str
    to_number: str
    carrier_call_id: str
    phone_number_id: str | None
    agent_id: str | None
    created_at: datetime
    rejected: bool = False  # record the call as ENDED/rejected, without a conversation


@dataclass
class OpenedCall:
    call_id: str
    conversation_id: str | None
    conversation_resumed: bool


@dataclass
class RecordCallStateInput:
    call_id: str
    state: CallState
    end_reason: EndReason | None = None
    connected_at: datetime | None = None
    ended_at: datetime | None = None
    room_name: str | None = None


@dataclass
class RecordedCallState:
    call_id: str
    found: bool


@dataclass
class CreateRoomInput:
    room_name: str
    call_id: str
    space_id: str | None
    direction: CallDirection
    max_call_duration_seconds: int
    workflow_id: str | None = None  # written into the room's metadata: room_finished names the call by it


@dataclass
class RoomCreated:
    room_name: str
    room_sid: str


@dataclass
class DispatchAgentInput:
    room_name: str
    call_id: str
    space_id: str
    agent_id: str
    conversation_id: str | None
    workflow_id: str | None = None
    resumed: bool = False  # a new agent for a call whose agent was lost: it picks up, no greeting
    attempt: int = 0  # one dispatch per attempt, however often the activity is retried
    amd: AmdOptions | None = None  # outbound calls: the agent listens for a machine before it greets
    flow: bool = False  # the job plays the call's flow (agent_id "" until the flow hands over)


@dataclass
class AgentDispatched:
    dispatch_id: str


@dataclass
class SetHoldInput:
    room_name: str
    participant_identity: str
    on_hold: bool
    mute_caller: bool = False  # on hold: the caller's audio leaves the room too (so the egress records silence)


@dataclass
class HoldApplied:
    participant_identity: str
    on_hold: bool


@dataclass
class TransferParticipantInput:
    room_name: str
    participant_identity: str
    transfer_to: str  # "tel:+1..." or "sip:..."


@dataclass
class DialParticipantInput:
    room_name: str
    sip_trunk_id: str
    number: str  # E.164
    participant_identity: str
    from_number: str | None = None
    ringing_timeout_seconds: int = 30
    attributes: dict[str, str] = field(default_factory=dict)  # set on the participant (webhooks read them)


@dataclass
class SipOutcome:
    """The result of a dial or transfer: ``ok`` or the SIP failure, never raised for a callee's answer."""

    ok: bool
    participant_identity: str | None = None
    sip_call_id: str | None = None
    sip_status_code: int | None = None
    error: str | None = None
    no_answer: bool = False


@dataclass
class SendDtmfInput:
    room_name: str
    digits: str
    destination_identities: list[str] = field(default_factory=list)


@dataclass
class DtmfSent:
    digits: str


@dataclass
class RemoveParticipantInput:
    room_name: str
    participant_identity: str


@dataclass
class ParticipantRemoved:
    removed: bool


@dataclass
class DeleteRoomInput:
    room_name: str


@dataclass
class RoomDeleted:
    deleted: bool


# ------------------------------------------------------------------------- media attachment
# A transport process (a media-stream server) carries a call's audio and its agent. It attaches itself to the call
# with the ``attach_media`` update; the workflow then holds a heartbeating ``carry_media`` activity on that
# process's own task queue for as long as the audio flows. If the process dies, the heartbeat stops and the
# workflow knows within MEDIA_HEARTBEAT_TIMEOUT: it re-attaches the call to another process.
UPDATE_ATTACH_MEDIA = "attach_media"
MEDIA_HEARTBEAT_TIMEOUT_SECONDS = 3.0  # margin for a busy process: a false alarm would move a live call
MEDIA_HEARTBEAT_INTERVAL_SECONDS = 0.5
MEDIA_REATTACH_WAIT_SECONDS = 20  # after a redirect, how long a new stream has to attach before the call fails
# A draining media process (SIGTERM) ends a call's carry_media with this failure type: the workflow moves the call
# to another process at once, as if the process had died, and its timeline says the call was handed over.
MEDIA_HANDED_OVER = "MediaHandedOver"
STREAM_HANDED_OVER = "handed_over"  # MediaCarried.ended_by of a stream its process gave back to the workflow
# A stream whose socket closed without the carrier's ``stop`` was lost, not hung up (the carrier's network, a proxy,
# a frame we refused): carry_media ends with MEDIA_STREAM_LOST and the call moves to a new stream, by the carrier's
# ``<Connect action>`` (stream_ended) or, when that has not come within MEDIA_STREAM_LOST_WAIT_SECONDS, by a redirect.
STREAM_LOST = "lost"
MEDIA_STREAM_LOST = "MediaStreamLost"
MEDIA_STREAM_LOST_WAIT_SECONDS = 3.0
STREAM_HUNG_UP = "hung_up"  # MediaCarried.ended_by of a stream our side closed (the call ended or moved)


LIVEKIT_FLOW_TRANSPORT = "livekit-room"  # AttachMedia.transport of a flow-mode job in a LiveKit room
CONSOLE_TRANSPORT = "console"  # AttachMedia.transport of a console call's socket (voice/console/carried.py)
CONSOLE_STREAM_PREFIX = "console-"  # its stream id: this + the call id (Twilio's streamSids start with MZ)


@dataclass
class AttachMedia:
    stream_id: str  # the transport's id for this audio (Twilio's streamSid)
    task_queue: str  # the carrying process's own queue: carry_media runs there
    transport: str = "carrier-stream"
    recording_path: str | None = None  # where the process records this stream, if the call asks it to
    participant_identity: str | None = None  # LiveKit: the job's participant in the room (its leaving is noticed)


@dataclass
class MediaAttached:
    call_id: str
    workflow_id: str
    space_id: str
    agent_id: str
    conversation_id: str | None
    resumed: bool  # the agent comes back to a call it was already on: no second greeting
    record: bool = False  # record caller and agent as the two channels of one stereo file
    consent: ConsentRequest | None = None  # record only after this (announcement played, caller consented)
    amd: AmdOptions | None = None  # outbound: detect a machine on the audio before the agent greets
    flow: bool = False  # a flow runs the call: no agent until the flow hands over (agent_id is "" until then)


# Update: the carrier says the stream of one ``<Connect>`` ended with the call still up (Twilio requests the
# ``<Connect action>`` URL the moment the stream's socket closes). The workflow moves the call at once, without
# waiting for the carry_media heartbeat to time out, and answers where the carrier goes next. Named after the method.
UPDATE_STREAM_ENDED = "stream_ended"
MEDIA_REATTACH_MAX_UNANSWERED = 2  # streams in a row that never attached (no media server took them): then fail


@dataclass
class StreamEnded:
    stream_no: int  # which of the call's ``<Connect><Stream>`` ended: 0 the first, +1 per move (its action URL says)


@dataclass
class StreamEndedAnswer:
    next_stream_no: int | None  # connect a new stream with this number; None: the call is over (hang up)


@dataclass
class CarryMediaInput:
    stream_id: str
    call_id: str


@dataclass
class MediaCarried:
    stream_id: str
    ended_by: str  # "caller" (stop) or "closed" (the socket went away)


@dataclass
class StreamRecordingInput:
    """The recording of one stream, on the process that carried it."""

    stream_id: str
    paused: bool = False  # for set_recording_paused


@dataclass
class StreamRecordingDone:
    closed: bool  # False: the stream did not end in time (the file is stored as far as it got)
    paused_spans: list[tuple[float, float]] = field(default_factory=list)  # seconds of the file, silence


@dataclass
class RecordingPaused:
    paused: bool
    span: tuple[float, float] | None = None  # the paused span in the file's seconds, once resumed


# Updates: pause/resume the call's recording (card numbers and other secrets); named after the methods.
UPDATE_PAUSE_RECORDING = "pause_recording"
UPDATE_RESUME_RECORDING = "resume_recording"


@dataclass
class RecordingPauseRequest:
    by: str = "staff"


# Update: the voice runtime reports the recording-consent outcome (models.consent.ConsentReport); named after the
# method. LiveKit calls start their egress then; media-stream calls start their recorder on its answer.
UPDATE_REPORT_RECORDING_CONSENT = "report_recording_consent"
