"""Domain enums shared by tables, schemas, workflows and the API."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """API key roles, weakest first."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"
    OWNER = "owner"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


class CarrierProvider(StrEnum):
    TWILIO = "twilio"


class SipTransport(StrEnum):
    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"


class Codec(StrEnum):
    PCMU = "PCMU"
    PCMA = "PCMA"
    G722 = "G722"
    OPUS = "opus"
    TELEPHONE_EVENT = "telephone-event"


class RouteType(StrEnum):
    AGENT = "agent"
    FLOW = "flow"


class MediaMode(StrEnum):
    LIVEKIT = "livekit"
    STREAM = "stream"
    WEB = "web"  # a console call (browser or `telephony call`): no carrier leg, no room; never a number's mode


class RecordingPolicy(StrEnum):
    OFF = "off"
    ALWAYS = "always"
    INBOUND_ONLY = "inbound_only"
    OUTBOUND_ONLY = "outbound_only"


class Channel(StrEnum):
    VOICE = "voice"
    SMS = "sms"


class ConversationStatus(StrEnum):
    OPEN = "open"
    PAUSED = "paused"
    CLOSED = "closed"


class MessageRole(StrEnum):
    CALLER = "caller"
    AGENT = "agent"
    STAFF = "staff"
    SYSTEM = "system"


class CallDirection(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class CallState(StrEnum):
    RINGING = "ringing"
    CONNECTED = "connected"
    ACTIVE = "active"
    HOLD = "hold"
    TRANSFERRING = "transferring"
    ENDED = "ended"


class EndReason(StrEnum):
    COMPLETED = "completed"
    NO_ANSWER = "no-answer"
    BUSY = "busy"
    FAILED = "failed"
    CANCELED = "canceled"
    TRANSFERRED = "transferred"
    MAX_DURATION = "max-duration"
    REJECTED = "rejected"


class AnsweredBy(StrEnum):
    """Who answered an outbound call, by answering-machine detection (the carrier's or ours)."""

    HUMAN = "human"
    MACHINE = "machine"
    UNKNOWN = "unknown"


class MachinePolicy(StrEnum):
    """What an outbound call does when a machine answers."""

    CONTINUE = "continue"  # the agent (or flow) talks as it would to a person
    HANGUP = "hangup"
    LEAVE_MESSAGE = "leave_message"  # wait for the beep, say the message, hang up


class AssetType(StrEnum):
    RECORDING = "recording"
    TRANSCRIPT = "transcript"
    OTHER = "other"
    AUDIO = "audio"  # uploaded by the space (prompts, voicemail messages): no retention deadline


class ProvisioningStatus(StrEnum):
    """Where a SIP trunk stands with LiveKit. PENDING: nothing configured to provision it with yet."""

    PENDING = "pending"
    PROVISIONING = "provisioning"
    PROVISIONED = "provisioned"
    FAILED = "failed"


class CampaignStatus(StrEnum):
    """Where an outbound campaign stands (``CampaignWorkflow``)."""

    RUNNING = "running"
    PAUSED = "paused"
    CANCELLING = "cancelling"  # no new dials; the calls in progress finish or are hung up
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class ContactStatus(StrEnum):
    """A campaign contact's place in the dialling queue (kept in the database, not in workflow history)."""

    PENDING = "pending"  # never dialled
    DIALING = "dialing"  # an attempt is in progress
    WAITING = "waiting"  # waits for its next attempt (backoff) or for its calling window to open
    DONE = "done"  # has its final outcome


class ContactOutcome(StrEnum):
    """The one final outcome of a campaign contact."""

    ANSWERED = "answered"
    VOICEMAIL_LEFT = "voicemail-left"
    NO_ANSWER = "no-answer"
    BUSY = "busy"
    FAILED = "failed"
    OPTED_OUT = "opted-out"
    OUTSIDE_WINDOW = "outside-window"
    CANCELLED = "cancelled"


class AttemptResult(StrEnum):
    """What one dial of a campaign contact came to (retries are decided per result)."""

    ANSWERED = "answered"
    VOICEMAIL_LEFT = "voicemail-left"
    MACHINE = "machine"  # a machine answered and no message was left
    NO_ANSWER = "no-answer"
    BUSY = "busy"
    FAILED = "failed"
    CANCELLED = "cancelled"
