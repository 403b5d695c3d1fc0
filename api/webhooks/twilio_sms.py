"""Twilio SMS webhooks: an arriving message goes to its thread (signal-with-start), a delivery report to the
message's thread. Verified like every Twilio entry point; only numbers of the space whose account signed the
request are acted on (another space's number is treated exactly like an unknown one)."""

from __future__ import annotations

import logging
import re
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request, Response, status
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import SecretBoxDep, SessionDep, SettingsDep, TemporalDep
from api.webhooks.twilio_auth import verified_twilio_request
from models import sms as m
from models.tables import CarrierAccount, Message, PhoneNumber
from workflows.sms_client import SmsClient, Thread

log = logging.getLogger(__name__)
router = APIRouter(tags=["webhooks"])

MESSAGE_SID = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
SignatureHeader = Annotated[str | None, Header(alias="X-Twilio-Signature")]


def _required(params: dict[str, str], *names: str) -> None:
    missing = [n for n in names if not params.get(n)]
    if missing:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"missing parameters: {', '.join(missing)}")
    if not MESSAGE_SID.match(params["MessageSid"]):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "MessageSid is not a Twilio message SID")


def _media(params: dict[str, str]) -> list[str]:
    count = int(params["NumMedia"]) if params.get("NumMedia", "").isdigit() else 0
    return [params[f"MediaUrl{i}"] for i in range(min(count, m.MAX_MEDIA_URLS)) if params.get(f"MediaUrl{i}")]


async def _sms_number(session: AsyncSession, account: CarrierAccount, e164: str) -> PhoneNumber | None:
    number = await session.scalar(
        select(PhoneNumber).where(PhoneNumber.e164 == e164, PhoneNumber.space_id == account.space_id)
    )
    return number if number is not None and number.enabled and number.sms_enabled else None


@router.post(m.WEBHOOK_SMS_PATH, response_class=Response, responses={200: {"content": {"application/xml": {}}}})
async def incoming_sms(
    request: Request,
    session: SessionDep,
    box: SecretBoxDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    signature: SignatureHeader = None,
) -> Response:
    """A message to one of our numbers: hand it to its thread and answer at once with empty TwiML (any reply
    goes out through the API, paced by the thread)."""
    verified = await verified_twilio_request(request, session, box, settings, signature)
    params = verified.params
    _required(params, "MessageSid", "From", "To")
    number = await _sms_number(session, verified.account, params["To"])
    if number is None:
        log.info("sms to a number we do not route", extra={"message_sid": params["MessageSid"]})
        return Response(EMPTY_TWIML, media_type="application/xml")
    if len(params.get("Body", "")) > m.MAX_BODY_CHARS:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"Body longer than {m.MAX_BODY_CHARS} characters")
    thread = Thread(number.space_id, number.id, number.e164, params["From"])
    sms = m.InboundSms(params["MessageSid"], params.get("Body", ""), _media(params))
    await SmsClient(await temporal.client(), settings.task_queue).deliver_inbound(thread, sms)
    return Response(EMPTY_TWIML, media_type="application/xml")


@router.post(m.WEBHOOK_SMS_STATUS_PATH, status_code=status.HTTP_204_NO_CONTENT)
async def sms_status(
    request: Request,
    session: SessionDep,
    box: SecretBoxDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    signature: SignatureHeader = None,
) -> None:
    """Delivery reports (queued, sent, delivered, undelivered, failed + ErrorCode), in any order."""
    verified = await verified_twilio_request(request, session, box, settings, signature)
    params = verified.params
    _required(params, "MessageSid", "MessageStatus")
    carrier_status = m.CARRIER_STATUSES.get(params["MessageStatus"])
    if carrier_status is None:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"unknown MessageStatus {params['MessageStatus']!r}")
    thread_id = request.query_params.get(m.STATUS_QUERY_THREAD, "")
    message_id = request.query_params.get(m.STATUS_QUERY_MESSAGE, "")
    message = await session.get(Message, message_id) if message_id else None
    space_id = verified.account.space_id
    if message is None or message.space_id != space_id or m.space_of_thread(thread_id) != space_id:
        log.info("sms status for no message of this space", extra={"message_sid": params["MessageSid"]})
        return
    error_code = int(params["ErrorCode"]) if params.get("ErrorCode", "").isdigit() else None
    report = m.DeliveryReport(message.id, carrier_status, params["MessageSid"], error_code)
    if await SmsClient(await temporal.client(), settings.task_queue).report_delivery(thread_id, report):
        return
    # The thread's run completed (idle): the report still reaches the message, with the same ordering rule.
    current = m.DeliveryStatus(message.delivery_status) if message.delivery_status else None
    if m.status_advances(current, carrier_status):
        message.delivery_status = carrier_status.value
        message.error_code = error_code if error_code is not None else message.error_code
        message.carrier_message_sid = message.carrier_message_sid or params["MessageSid"]
        await session.commit()
