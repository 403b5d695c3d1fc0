"""The SMS thread contract: ``SmsThreadWorkflow``'s id derivation, signal/update/query names, inputs and outputs,
keyword sets and segment counting. One thread per space + our number + the other party.

The API, the webhooks and the bench reach threads only through ``workflows.sms_client.SmsClient``, which
takes the names from here."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from temporalio.common import SearchAttributeKey, WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from models.calls import SA_PHONE_NUMBER, SA_SPACE_ID
from models.enums import MessageRole
from models.sms_pacing import SlotGrant

SMS_THREAD_WORKFLOW = "SmsThreadWorkflow"
# The thread's agent answers through this local activity (``activities.sms_agent``, the speech role's stack);
# the workflow names it so that importing the workflow does not import livekit-agents.
AGENT_REPLY = "agent_reply"
SMS_THREAD_PREFIX = "sms-"
# A thread that completed when idle starts again with the next message (a new run, same conversation).
SMS_ID_REUSE_POLICY = WorkflowIDReusePolicy.ALLOW_DUPLICATE
SMS_ID_CONFLICT_POLICY = WorkflowIDConflictPolicy.USE_EXISTING

SIGNAL_INBOUND = "inbound_message"
SIGNAL_DELIVERY_STATUS = "delivery_status"
UPDATE_SEND = "send_message"
QUERY_GET_STATE = "get_state"

# ApplicationError types.
OPTED_OUT = "SmsOptedOut"  # the party sent STOP: the API answers 409 with the reason
INVALID_MESSAGE = "SmsInvalidMessage"  # empty or too long: the API answers 422
THREAD_CLOSED = "SmsThreadClosed"  # the number no longer routes SMS: the API answers 409
SEND_FAILED = "SmsSendFailed"  # the carrier refused the message for good (its error code attached)

SA_SMS_THREAD_STATE = SearchAttributeKey.for_keyword("SmsThreadState")
SA_SMS_SPACE_ID = SA_SPACE_ID
SA_SMS_PHONE_NUMBER = SA_PHONE_NUMBER  # our number, never the other party's

WEBHOOK_SMS_PATH = "/webhooks/twilio/sms"
WEBHOOK_SMS_STATUS_PATH = "/webhooks/twilio/sms-status"
STATUS_QUERY_THREAD = "thread"  # query parameters of the status callback URL we give the carrier
STATUS_QUERY_MESSAGE = "message_id"

MAX_BODY_CHARS = 1600
MAX_MEDIA_URLS = 10
SMS_SOURCE = "sms"

# Carrier compliance keywords (the whole message, case- and whitespace-insensitive).
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO"})
STOP_REPLY = (
    "You have been unsubscribed and will receive no more messages from this number. Reply START to resubscribe."
)
START_REPLY = "You have been resubscribed. Reply STOP to unsubscribe."
DEFAULT_HELP_TEXT = "Reply STOP to unsubscribe, START to resubscribe."


def sms_thread_workflow_id(space_id: str, our_number: str, party: str) -> str:
    """The thread's workflow id. Phone numbers are personal data shown in the Temporal UI: only a hash of
    them goes into the id (stable, so every message of the pair reaches the same thread)."""
    digest = hashlib.sha256(f"{our_number}|{party}".encode()).hexdigest()[:24]
    return f"{SMS_THREAD_PREFIX}{space_id}-{digest}"


def space_of_thread(workflow_id: str) -> str | None:
    """The space id inside a thread's workflow id (``sms-<space>-<hash>``), or None if it is not one."""
    if not workflow_id.startswith(SMS_THREAD_PREFIX):
        return None
    space, _, digest = workflow_id[len(SMS_THREAD_PREFIX) :].rpartition("-")
    return space if space and len(digest) == 24 else None


class Keyword(StrEnum):
    STOP = "stop"
    START = "start"
    HELP = "help"


def keyword_of(body: str) -> Keyword | None:
    """STOP/START/HELP when the whole message is one of their words ("  stop ", "Stop.", "UNSUBSCRIBE")."""
    word = "".join(body.split()).strip(".!?").upper()
    if word in STOP_WORDS:
        return Keyword.STOP
    if word in START_WORDS:
        return Keyword.START
    if word in HELP_WORDS:
        return Keyword.HELP
    return None


# ------------------------------------------------------------------------------ segments
class Encoding(StrEnum):
    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")  # each costs two septets (escape + character)


@dataclass(frozen=True)
class Segments:
    encoding: Encoding
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    count: int


def count_segments(body: str) -> Segments:
    """How many SMS segments a body takes: GSM-7 (160 septets alone, 153 per part when concatenated) unless a
    character is outside it, then UCS-2 (70 UTF-16 units alone, 67 per part; an emoji takes two units)."""
    if all(ch in _GSM7_BASIC or ch in _GSM7_EXTENSION for ch in body):
        units = sum(2 if ch in _GSM7_EXTENSION else 1 for ch in body)
        single, part = 160, 153
        encoding = Encoding.GSM7
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, part = 70, 67
        encoding = Encoding.UCS2
    count = 1 if units <= single else -(-units // part)
    return Segments(encoding, units, count)


# ------------------------------------------------------------------------------ states
class SmsThreadState(StrEnum):
    OPEN = "open"  # idle, waiting for a message
    SENDING = "sending"  # outbound messages queued (paced by the token bucket)
    OPTED_OUT = "opted-out"  # the party sent STOP: nothing is sent until START
    PAUSED = "paused"  # idle past the window: the conversation paused and the run completed


class SmsDirection(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class DeliveryStatus(StrEnum):
    RECEIVED = "received"  # inbound
    QUEUED = "queued"  # ours, waiting for its turn (token bucket) or accepted by the carrier
    SENDING = "sending"  # handed to the carrier (or an attempt is in flight)
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"


FINAL_STATUSES = frozenset({DeliveryStatus.DELIVERED, DeliveryStatus.UNDELIVERED, DeliveryStatus.FAILED})
FAILED_STATUSES = frozenset({DeliveryStatus.UNDELIVERED, DeliveryStatus.FAILED})
_RANK = {
    DeliveryStatus.RECEIVED: 0,
    DeliveryStatus.QUEUED: 1,
    DeliveryStatus.SENDING: 2,
    DeliveryStatus.SENT: 3,
    DeliveryStatus.DELIVERED: 4,
    DeliveryStatus.UNDELIVERED: 4,
    DeliveryStatus.FAILED: 4,
}
# Twilio's MessageStatus values and ours.
CARRIER_STATUSES: dict[str, DeliveryStatus] = {
    "accepted": DeliveryStatus.QUEUED,
    "scheduled": DeliveryStatus.QUEUED,
    "queued": DeliveryStatus.QUEUED,
    "sending": DeliveryStatus.SENDING,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}


def status_advances(current: DeliveryStatus | None, new: DeliveryStatus) -> bool:
    """Whether a delivery report moves a message on: callbacks come in any order, so a late ``sent`` after
    ``delivered`` changes nothing, and the first final status wins."""
    if current is None:
        return True
    if current in FINAL_STATUSES:
        return False
    return _RANK[new] > _RANK[current]


# ------------------------------------------------------------------- workflow input / output
@dataclass
class OutboundSms:
    """A message waiting to leave (carried across continue-as-new until the carrier took it)."""

    message_id: str
    body: str
    media_urls: list[str] = field(default_factory=list)
    role: MessageRole = MessageRole.STAFF
    queued_at: datetime | None = None
    stored: bool = False  # its Message row exists


@dataclass
class SmsFlowState:
    """A thread's flow (its number routes to one): the version read when the flow began, where it waits and what
    it gathered. Carried across continue-as-new; dropped when the flow ends (the next message starts it again),
    kept once it handed the thread to an agent (who answers from then on, with the variables)."""

    flow_id: str
    version: int
    document_json: str
    waiting_at: str | None = None  # the gather waiting for the next inbound message
    attempt: int = 0  # of that gather (counts from 0)
    reply_by: datetime | None = None  # when that gather stops waiting (its reply timeout): then it is a no-input
    variables: dict[str, str] = field(default_factory=dict)
    agent_id: str | None = None  # the agent the flow handed the thread to


@dataclass
class ThreadCarry:
    """What a thread keeps across continue-as-new: nothing pending is lost, opt-out and conversation stay."""

    conversation_id: str | None
    opted_out: bool
    pending: list[OutboundSms]
    seen_inbound: list[str]  # the last carrier MessageSids handled (duplicates of them are dropped)
    tokens: float
    tokens_at: datetime | None
    total_messages: int
    runs: int
    recent: list[ThreadMessage] = field(default_factory=list)
    failures: list[ThreadMessage] = field(default_factory=list)
    slot: SlotGrant | None = None  # the send slot held from the number's pacer for the head of the queue
    flow: SmsFlowState | None = None
    flow_steps: list[str] = field(default_factory=list)


@dataclass
class StartSmsThread:
    space_id: str
    phone_number_id: str
    our_number: str
    party: str
    carry: ThreadCarry | None = None


@dataclass
class ThreadMessage:
    """A message as the thread's state shows it (bodies stay in the database)."""

    message_id: str
    direction: SmsDirection
    role: MessageRole
    status: DeliveryStatus
    segments: int
    at: datetime
    carrier_message_sid: str | None = None
    error_code: int | None = None
    error: str | None = None


@dataclass
class SmsThreadView:
    """What ``get_state`` answers and what a run returns when it completes."""

    workflow_id: str
    space_id: str
    phone_number_id: str
    our_number: str
    party: str
    state: SmsThreadState
    conversation_id: str | None
    opted_out: bool
    agent_id: str | None
    pending: int
    total_messages: int
    runs: int
    messages: list[ThreadMessage]
    failures: list[ThreadMessage]
    last_activity_at: datetime | None = None
    flow_steps: list[str] = field(default_factory=list)  # the latest steps of the number's flow, with their input


# ------------------------------------------------------------------------- signals/updates
@dataclass
class InboundSms:
    message_sid: str
    body: str
    media_urls: list[str] = field(default_factory=list)
    received_at: datetime | None = None


@dataclass
class DeliveryReport:
    message_id: str
    status: DeliveryStatus
    carrier_message_sid: str | None = None
    error_code: int | None = None


@dataclass
class SendSms:
    message_id: str  # chosen by the caller, also the update id: a retried request is one message
    body: str
    media_urls: list[str] = field(default_factory=list)
    role: MessageRole = MessageRole.STAFF


@dataclass
class SmsQueued:
    message_id: str
    status: DeliveryStatus
    segments: int
    encoding: Encoding
    position: int  # messages ahead of it in the thread's queue
    conversation_id: str | None


# ----------------------------------------------------------------------------- activities
@dataclass
class RouteSmsInput:
    space_id: str
    phone_number_id: str
    party: str


@dataclass
class SmsRoute:
    accepted: bool
    reason: str | None = None
    agent_id: str | None = None
    opted_out: bool = False
    messages_per_second: float = 1.0
    burst: int = 1
    idle_timeout_seconds: int = 86_400
    help_text: str = DEFAULT_HELP_TEXT
    max_messages_per_run: int = 200
    flow_id: str | None = None  # the number routes to a flow: it answers the thread's messages


@dataclass
class OpenThreadInput:
    workflow_id: str
    space_id: str
    phone_number_id: str
    our_number: str
    party: str
    agent_id: str | None
    at: datetime


@dataclass
class OpenedThread:
    conversation_id: str
    resumed: bool


@dataclass
class StoreMessageInput:
    space_id: str
    conversation_id: str
    message_id: str
    direction: SmsDirection
    role: MessageRole
    body: str
    segments: int
    status: DeliveryStatus
    at: datetime
    media_urls: list[str] = field(default_factory=list)
    carrier_message_sid: str | None = None  # inbound: the carrier's id (duplicates are stored once)


@dataclass
class StoredMessage:
    message_id: str
    duplicate: bool


@dataclass
class SetOptOutInput:
    space_id: str
    phone_number_id: str
    party: str
    opted_out: bool
    at: datetime


@dataclass
class OptOutRecorded:
    opted_out: bool


@dataclass
class SendCarrierInput:
    workflow_id: str
    space_id: str
    phone_number_id: str
    message_id: str
    from_number: str
    to_number: str
    body: str
    media_urls: list[str] = field(default_factory=list)
    slot_at: datetime | None = None  # the pacer's slot: never post before it,
    slot_valid_until: datetime | None = None  # nor after it (SLOT_EXPIRED: the thread asks for a new one)


@dataclass
class CarrierAccepted:
    carrier_message_sid: str | None  # None only when the slot had passed (nothing was posted)
    status: DeliveryStatus
    slot_passed: bool = False  # came after its pacer slot's validity: nothing posted, ask for a new slot


@dataclass
class RecordDeliveryInput:
    space_id: str
    message_id: str
    status: DeliveryStatus
    carrier_message_sid: str | None = None
    error_code: int | None = None


@dataclass
class DeliveryRecorded:
    applied: bool


@dataclass
class AgentReplyInput:
    space_id: str
    agent_id: str
    conversation_id: str
    text: str
    variables: dict[str, str] = field(default_factory=dict)  # gathered by the number's flow before it handed over


@dataclass
class AgentReply:
    text: str


@dataclass
class PauseThreadInput:
    space_id: str
    conversation_id: str
    at: datetime


@dataclass
class ThreadPaused:
    paused: bool
