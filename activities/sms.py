"""SMS activities: routing a thread (number -> space -> agent, opt-out, settings), its conversation and thread
row, storing messages, the opt-out store, delivery reports, and sending through the carrier's Messages API.

Every activity is idempotent: retried attempts and replays write the same rows, and one message of ours becomes
at most one carrier message (see ``send_to_carrier``)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.carrier_clients import CarrierClients
from activities.twilio_rest import TwilioError, TwilioRest
from models import sms as m
from models.enums import Channel, ConversationStatus, RouteType
from models.schemas.sms import SmsSettings
from models.tables import Agent, Conversation, Message, PhoneNumber, SmsOptOut, SmsThread, Space

log = logging.getLogger(__name__)
RECONCILE_WINDOW = timedelta(minutes=10)  # how far back a carrier message can match an in-doubt send


def _dedupe_key(space_id: str, carrier_message_sid: str) -> str:
    return f"twilio-sms:{space_id}:{carrier_message_sid}"


class SmsActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], carriers: CarrierClients) -> None:
        self._sessions = sessions
        self._carriers = carriers

    # ------------------------------------------------------------------------ thread and route
    @activity.defn
    async def route_sms(self, request: m.RouteSmsInput) -> m.SmsRoute:
        """Whether the number (of this space) handles SMS, who answers, the party's opt-out and the pacing."""
        async with self._sessions() as session:
            number = await session.get(PhoneNumber, request.phone_number_id)
            if number is None or number.space_id != request.space_id:
                return m.SmsRoute(accepted=False, reason="unknown number")
            if not (number.enabled and number.sms_enabled):
                return m.SmsRoute(accepted=False, reason="number disabled or not SMS-enabled")
            space = await session.get(Space, request.space_id)
            settings = SmsSettings.of(space.call_settings if space else None)
            agent_id = None
            flow_id = number.flow_id if number.route_type is RouteType.FLOW else None
            if number.route_type is RouteType.AGENT and number.agent_id:
                agent = await session.get(Agent, number.agent_id)
                agent_id = agent.id if agent is not None and agent.space_id == request.space_id else None
            opted_out = await session.scalar(
                select(SmsOptOut.id).where(
                    SmsOptOut.space_id == request.space_id,
                    SmsOptOut.phone_number_id == request.phone_number_id,
                    SmsOptOut.party == request.party,
                )
            )
        return m.SmsRoute(
            accepted=True,
            agent_id=agent_id,
            flow_id=flow_id,
            opted_out=opted_out is not None,
            messages_per_second=settings.messages_per_second,
            burst=settings.burst,
            idle_timeout_seconds=settings.idle_timeout_seconds,
            help_text=settings.help_text,
            max_messages_per_run=settings.max_messages_per_run,
        )

    @activity.defn
    async def open_thread(self, request: m.OpenThreadInput) -> m.OpenedThread:
        """The thread's row and its conversation: the one it had (reopened), else the party's open or paused
        SMS conversation on that number, else a new one."""
        async with self._sessions() as session:
            thread = await session.get(SmsThread, request.workflow_id)
            conversation = None
            if thread is not None and thread.conversation_id:
                conversation = await session.get(Conversation, thread.conversation_id)
            if conversation is None or conversation.status is ConversationStatus.CLOSED:
                conversation = await session.scalar(
                    select(Conversation)
                    .where(
                        Conversation.space_id == request.space_id,
                        Conversation.channel == Channel.SMS,
                        Conversation.phone_number_id == request.phone_number_id,
                        Conversation.external_party == request.party,
                        Conversation.status.in_([ConversationStatus.OPEN, ConversationStatus.PAUSED]),
                    )
                    .order_by(Conversation.updated_at.desc())
                    .limit(1)
                )
            resumed = conversation is not None
            if conversation is None:
                conversation = Conversation(
                    space_id=request.space_id,
                    channel=Channel.SMS,
                    phone_number_id=request.phone_number_id,
                    agent_id=request.agent_id,
                    external_party=request.party,
                    status=ConversationStatus.OPEN,
                    created_at=request.at,
                )
                session.add(conversation)
                await session.flush()
            conversation.status = ConversationStatus.OPEN
            if thread is None:
                thread = SmsThread(
                    id=request.workflow_id,
                    space_id=request.space_id,
                    phone_number_id=request.phone_number_id,
                    our_number=request.our_number,
                    party=request.party,
                    created_at=request.at,
                )
                session.add(thread)
            thread.conversation_id = conversation.id
            try:
                await session.commit()
            except IntegrityError:  # a concurrent attempt created the thread first: take what it made
                await session.rollback()
                raced = await session.get(SmsThread, request.workflow_id)
                if raced is None or raced.conversation_id is None:
                    raise
                return m.OpenedThread(raced.conversation_id, resumed=True)
            log.info("sms thread opened", extra={"thread_id": request.workflow_id, "resumed": resumed})
            return m.OpenedThread(conversation.id, resumed)

    @activity.defn
    async def pause_thread(self, request: m.PauseThreadInput) -> m.ThreadPaused:
        async with self._sessions() as session:
            conversation = await session.get(Conversation, request.conversation_id)
            if conversation is None or conversation.space_id != request.space_id:
                return m.ThreadPaused(paused=False)
            if conversation.status is ConversationStatus.OPEN:
                conversation.status = ConversationStatus.PAUSED
                await session.commit()
            return m.ThreadPaused(paused=True)

    # -------------------------------------------------------------------------------- messages
    @activity.defn
    async def store_message(self, request: m.StoreMessageInput) -> m.StoredMessage:
        """Insert the message once: by our id (retries) and, inbound, by the carrier's MessageSid (the same
        message delivered again, even to a later run, is a duplicate). One transaction: the insert (its unique
        keys catch repeats) and two updates, no reads on the way (this runs twice per message)."""
        sid = request.carrier_message_sid
        dedupe = _dedupe_key(request.space_id, sid) if sid else None
        async with self._sessions() as session:
            session.add(
                Message(
                    id=request.message_id,
                    space_id=request.space_id,
                    conversation_id=request.conversation_id,
                    role=request.role,
                    source=m.SMS_SOURCE,
                    text=request.body,
                    dedupe_key=dedupe,
                    direction=request.direction.value,
                    delivery_status=request.status.value,
                    carrier_message_sid=request.carrier_message_sid,
                    segments=request.segments,
                    media_urls=list(request.media_urls) or None,
                    created_at=request.at,
                )
            )
            try:
                await session.flush()
            except IntegrityError:  # stored by an earlier attempt, or the same MessageSid again
                await session.rollback()
                existing = await self._existing(session, request.space_id, request.message_id, dedupe)
                if existing is None:
                    raise
                return m.StoredMessage(existing.id, duplicate=existing.id != request.message_id)
            await session.execute(
                update(Conversation)
                .where(Conversation.id == request.conversation_id, Conversation.space_id == request.space_id)
                .values(status=ConversationStatus.OPEN, updated_at=request.at)
                .execution_options(synchronize_session=False)
            )
            await session.execute(
                update(SmsThread)
                .where(SmsThread.space_id == request.space_id, SmsThread.conversation_id == request.conversation_id)
                .values(last_message_at=request.at)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        return m.StoredMessage(request.message_id, duplicate=False)

    @staticmethod
    async def _existing(session: AsyncSession, space_id: str, message_id: str, dedupe: str | None) -> Message | None:
        found = await session.get(Message, message_id)
        if found is None and dedupe is not None:
            found = await session.scalar(select(Message).where(Message.dedupe_key == dedupe))
        if found is not None and found.space_id != space_id:
            raise ApplicationError("message id taken in another space", type="SmsStoreConflict", non_retryable=True)
        return found

    @activity.defn
    async def set_opt_out(self, request: m.SetOptOutInput) -> m.OptOutRecorded:
        async with self._sessions() as session:
            row = await session.scalar(
                select(SmsOptOut).where(
                    SmsOptOut.space_id == request.space_id,
                    SmsOptOut.phone_number_id == request.phone_number_id,
                    SmsOptOut.party == request.party,
                )
            )
            if request.opted_out and row is None:
                session.add(
                    SmsOptOut(
                        space_id=request.space_id,
                        phone_number_id=request.phone_number_id,
                        party=request.party,
                        created_at=request.at,
                    )
                )
            elif not request.opted_out and row is not None:
                await session.delete(row)
            try:
                await session.commit()
            except IntegrityError:  # a concurrent attempt inserted it
                await session.rollback()
        log.info(
            "sms opt-out changed", extra={"phone_number_id": request.phone_number_id, "opted_out": request.opted_out}
        )
        return m.OptOutRecorded(request.opted_out)

    @activity.defn
    async def record_delivery(self, request: m.RecordDeliveryInput) -> m.DeliveryRecorded:
        """Apply a delivery report to the message row, in whatever order reports come (first final status wins)."""
        async with self._sessions() as session:
            message = await session.get(Message, request.message_id)
            if message is None or message.space_id != request.space_id:
                return m.DeliveryRecorded(applied=False)
            if request.carrier_message_sid and not message.carrier_message_sid:
                message.carrier_message_sid = request.carrier_message_sid
            current = m.DeliveryStatus(message.delivery_status) if message.delivery_status else None
            applied = m.status_advances(current, request.status)
            if applied:
                message.delivery_status = request.status.value
                if request.error_code is not None:
                    message.error_code = request.error_code
            await session.commit()
            return m.DeliveryRecorded(applied)

    # ---------------------------------------------------------------------------------- carrier
    @activity.defn
    async def send_to_carrier(self, request: m.SendCarrierInput) -> m.CarrierAccepted:
        """POST the message to the carrier's Messages API, at most once per message id.

        Idempotency record: before the POST the row is marked ``sending``; once the carrier answers, its
        message SID is written. An attempt that finds a SID returns it; one that finds ``sending`` without a SID
        (an earlier attempt crashed, timed out, or got a 5xx whose request may have taken effect) first looks
        the message up at the carrier (same From/To/body, created since the row, SID not yet ours) and adopts
        it rather than posting a second one. A 429 means the carrier did not take it: the mark is cleared."""
        client = await self._carriers.for_number(request.space_id, request.phone_number_id)
        if client is None:
            raise ApplicationError("the number has no carrier account", None, type=m.SEND_FAILED, non_retryable=True)
        async with self._sessions() as session:
            row = await session.get(Message, request.message_id)
            if row is None or row.space_id != request.space_id:
                raise ApplicationError("message not stored", None, type=m.SEND_FAILED, non_retryable=True)
            if row.carrier_message_sid:
                return m.CarrierAccepted(row.carrier_message_sid, m.DeliveryStatus(row.delivery_status or "sending"))
            in_doubt, since = row.delivery_status == m.DeliveryStatus.SENDING, row.created_at
            if in_doubt and (found := await self._sent_earlier(session, client, request, since)) is not None:
                log.info("sms send reconciled with the carrier", extra={"message_id": request.message_id})
                return await self._accepted(session, row, found)
            if not await self._in_slot(request):
                return m.CarrierAccepted(None, m.DeliveryStatus.QUEUED, slot_passed=True)
            row.delivery_status = m.DeliveryStatus.SENDING.value
            await session.commit()
            try:
                created = await client.create_message(self._params(request))
            except TwilioError as exc:
                if exc.status == 429:
                    row.delivery_status = m.DeliveryStatus.QUEUED.value
                    await session.commit()
                if exc.retryable:
                    raise  # retried by the activity's policy
                row.delivery_status, row.error_code = m.DeliveryStatus.FAILED.value, exc.code
                await session.commit()
                raise ApplicationError(str(exc), exc.code, type=m.SEND_FAILED, non_retryable=True) from exc
            except httpx.HTTPError:
                raise  # the answer is lost, not the request: the next attempt reconciles
            return await self._accepted(session, row, created)

    @staticmethod
    async def _in_slot(request: m.SendCarrierInput) -> bool:
        """Post inside the pacer's slot only: wait for its opening if early; False if past its validity (a thread
        whose worker was down, or busy, asks for a new slot rather than posting with the ones that opened since)."""
        if request.slot_at is None or request.slot_valid_until is None:
            return True
        early = (request.slot_at - datetime.now(UTC)).total_seconds()
        if early > 0:
            await asyncio.sleep(early)
        return datetime.now(UTC) <= request.slot_valid_until

    def _params(self, request: m.SendCarrierInput) -> list[tuple[str, str]]:
        callback = urlencode({m.STATUS_QUERY_THREAD: request.workflow_id, m.STATUS_QUERY_MESSAGE: request.message_id})
        public = self._carriers.settings.public_url.rstrip("/")
        params = [
            ("To", request.to_number),
            ("From", request.from_number),
            ("Body", request.body),
            ("StatusCallback", f"{public}{m.WEBHOOK_SMS_STATUS_PATH}?{callback}"),
        ]
        return params + [("MediaUrl", url) for url in request.media_urls]

    @staticmethod
    async def _accepted(session: AsyncSession, row: Message, carrier: dict[str, Any]) -> m.CarrierAccepted:
        status = m.CARRIER_STATUSES.get(str(carrier.get("status")), m.DeliveryStatus.SENDING)
        status = m.DeliveryStatus.SENDING if status is m.DeliveryStatus.QUEUED else status
        row.carrier_message_sid = str(carrier["sid"])
        row.delivery_status = status.value
        await session.commit()
        return m.CarrierAccepted(row.carrier_message_sid, status)

    @staticmethod
    async def _sent_earlier(
        session: AsyncSession, client: TwilioRest, request: m.SendCarrierInput, since: datetime
    ) -> dict[str, Any] | None:
        """The carrier's message an earlier attempt created, if any (oldest matching one not already ours)."""
        candidates = await client.list_messages(request.to_number, request.from_number)
        for carrier in reversed(candidates):
            try:
                created = parsedate_to_datetime(str(carrier.get("date_created")))
            except (TypeError, ValueError):
                continue
            if carrier.get("body") != request.body or created < since - RECONCILE_WINDOW:
                continue
            taken = await session.scalar(
                select(Message.id).where(
                    Message.space_id == request.space_id, Message.carrier_message_sid == carrier["sid"]
                )
            )
            if taken is None:
                return carrier
        return None
