"""The SMS thread's rules as pure data and functions: the token bucket that paces sends, the send rule book the
update validator shares, and the thread's ledger (messages, delivery reports, what continue-as-new carries).
No I/O and no workflow APIs (the caller passes the time in): deterministic, tested without a server."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio.common import SearchAttributeUpdate

from models.enums import MessageRole
from models.sms import (
    FAILED_STATUSES,
    INVALID_MESSAGE,
    MAX_BODY_CHARS,
    MAX_MEDIA_URLS,
    OPTED_OUT,
    SA_SMS_PHONE_NUMBER,
    SA_SMS_SPACE_ID,
    SA_SMS_THREAD_STATE,
    DeliveryReport,
    OutboundSms,
    SendSms,
    SmsThreadState,
    SmsThreadView,
    StartSmsThread,
    ThreadCarry,
    ThreadMessage,
    status_advances,
)

RECENT_MESSAGES = 50  # messages the state view lists (older ones are in the database)
SEEN_INBOUND = 200  # carrier MessageSids remembered to drop duplicates (the database dedupes the rest)
MAX_FAILURES = 20


@dataclass
class TokenBucket:
    """``rate`` tokens a second up to ``burst``; a send takes one. Lives in workflow state, so the pacing of a
    queued burst survives a worker restart (the refill time is workflow time)."""

    rate: float
    burst: int
    tokens: float
    at: datetime | None = None

    def refill(self, now: datetime) -> None:
        if self.at is not None and now > self.at:
            self.tokens = min(float(self.burst), self.tokens + (now - self.at).total_seconds() * self.rate)
        self.at = now if self.at is None or now > self.at else self.at

    def take(self, now: datetime) -> bool:
        self.refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def wait(self, now: datetime) -> timedelta:
        """How long until a token is available (zero when one is)."""
        self.refill(now)
        missing = 1.0 - self.tokens
        return timedelta(0) if missing <= 0 else timedelta(seconds=missing / self.rate)


def send_problem(request: SendSms, opted_out: bool) -> tuple[str, str] | None:
    """Why a send is refused, as ``(error type, reason)``, or None: the update validator's rule book.
    Opted-out parties get only the thread's own STOP/START confirmations (role SYSTEM)."""
    if not request.body.strip() and not request.media_urls:
        return INVALID_MESSAGE, "body: a message needs a body or media"
    if len(request.body) > MAX_BODY_CHARS:
        return INVALID_MESSAGE, f"body: at most {MAX_BODY_CHARS} characters (got {len(request.body)})"
    if len(request.media_urls) > MAX_MEDIA_URLS:
        return INVALID_MESSAGE, f"media_urls: at most {MAX_MEDIA_URLS}"
    if opted_out and request.role is not MessageRole.SYSTEM:
        return OPTED_OUT, "the recipient opted out of messages from this number (sent STOP); they can reply START"
    return None


@dataclass
class ThreadLedger:
    """Everything a run knows about its thread."""

    start: StartSmsThread
    workflow_id: str
    conversation_id: str | None = None
    opted_out: bool = False
    agent_id: str | None = None
    pending: list[OutboundSms] = field(default_factory=list)
    seen_inbound: list[str] = field(default_factory=list)
    messages: dict[str, ThreadMessage] = field(default_factory=dict)  # by id: carried recent ones, then this run's
    run_messages: int = 0  # added in this run (continue-as-new bounds it)
    failures: list[ThreadMessage] = field(default_factory=list)
    total_messages: int = 0
    runs: int = 1
    paused: bool = False
    last_activity_at: datetime | None = None

    @classmethod
    def begin(cls, start: StartSmsThread, workflow_id: str) -> ThreadLedger:
        ledger = cls(start, workflow_id)
        if (carry := start.carry) is not None:
            ledger.conversation_id = carry.conversation_id
            ledger.opted_out = carry.opted_out
            ledger.pending = list(carry.pending)
            ledger.seen_inbound = list(carry.seen_inbound)
            ledger.total_messages = carry.total_messages
            ledger.runs = carry.runs + 1
            ledger.messages = {m.message_id: m for m in carry.recent}
            ledger.failures = list(carry.failures)
        return ledger

    @property
    def state(self) -> SmsThreadState:
        if self.paused:
            return SmsThreadState.PAUSED
        if self.opted_out:
            return SmsThreadState.OPTED_OUT
        return SmsThreadState.SENDING if self.pending else SmsThreadState.OPEN

    def seen(self, message_sid: str) -> bool:
        return message_sid in self.seen_inbound

    def remember_inbound(self, message_sid: str) -> None:
        self.seen_inbound.append(message_sid)
        del self.seen_inbound[:-SEEN_INBOUND]

    def add(self, message: ThreadMessage) -> None:
        if message.message_id not in self.messages:
            self.total_messages += 1
            self.run_messages += 1
        self.messages[message.message_id] = message
        self.last_activity_at = message.at

    def report(self, report: DeliveryReport, error: str | None = None) -> ThreadMessage | None:
        """Apply a delivery report; the message if it moved on, None if it came late, twice or for no message."""
        message = self.messages.get(report.message_id)
        if message is None:
            return None
        message.carrier_message_sid = report.carrier_message_sid or message.carrier_message_sid
        if not status_advances(message.status, report.status):
            return None
        message.status = report.status
        if report.error_code is not None:
            message.error_code = report.error_code
        if error is not None:
            message.error = error
        if report.status in FAILED_STATUSES:
            self.failures.append(message)
            del self.failures[:-MAX_FAILURES]
        return message

    def carry(self, bucket: TokenBucket) -> ThreadCarry:
        recent = list(self.messages.values())[-RECENT_MESSAGES:]
        return ThreadCarry(
            conversation_id=self.conversation_id,
            opted_out=self.opted_out,
            pending=list(self.pending),
            seen_inbound=list(self.seen_inbound),
            tokens=bucket.tokens,
            tokens_at=bucket.at,
            total_messages=self.total_messages,
            runs=self.runs,
            recent=recent,
            failures=list(self.failures),
        )

    def view(self) -> SmsThreadView:
        s = self.start
        return SmsThreadView(
            workflow_id=self.workflow_id,
            space_id=s.space_id,
            phone_number_id=s.phone_number_id,
            our_number=s.our_number,
            party=s.party,
            state=self.state,
            conversation_id=self.conversation_id,
            opted_out=self.opted_out,
            agent_id=self.agent_id,
            pending=len(self.pending),
            total_messages=self.total_messages,
            runs=self.runs,
            messages=list(self.messages.values())[-RECENT_MESSAGES:],
            failures=list(self.failures),
            last_activity_at=self.last_activity_at,
        )

    def search_attributes(self) -> list[SearchAttributeUpdate]:
        return [
            SA_SMS_THREAD_STATE.value_set(self.state.value),
            SA_SMS_SPACE_ID.value_set(self.start.space_id),
            SA_SMS_PHONE_NUMBER.value_set(self.start.our_number),
        ]
