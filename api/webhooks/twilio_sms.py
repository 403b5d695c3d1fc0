"""Twilio SMS webhooks: an arriving message goes to its thread (signal-with-start), a delivery report to the
message's thread. Verified like every Twilio entry point; only numbers of the space whose account signed the
request are acted on (another space's number is treated exactly like an unknown one)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response, status

from api.carrier_directory import CarrierDirectory, KnownNumber
from api.deps import DirectoryDep, SessionDep, SettingsDep, TemporalDep
from api.webhooks.twilio_auth import VerifiedTwilio
from api.webhooks.twilio_form import sms_form, sms_status_form
from models import sms as m
from models.tables import Message
from workflows.sms_client import SmsClient, Thread

log = logging.getLogger(__name__)
router = APIRouter(tags=["webhooks"])

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def _media(params: dict[str, str], count: int | None) -> list[str]:
    return [params[f"MediaUrl{i}"] for i in range(min(count or 0, m.MAX_MEDIA_URLS)) if params.get(f"MediaUrl{i}")]


async def _sms_number(directory: CarrierDirectory, space_id: str, e164: str) -> KnownNumber | None:
    number = await directory.number(space_id, e164)
    return number if number is not None and number.enabled and number.sms_enabled else None


@router.post(m.WEBHOOK_SMS_PATH, response_class=Response, responses={200: {"content": {"application/xml": {}}}})
async def incoming_sms(
    directory: DirectoryDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    verified: VerifiedTwilio,
) -> Response:
    """A message to one of our numbers: hand it to its thread and answer at once with empty TwiML (any reply
    goes out through the API, paced by the thread)."""
    params = verified.params
    form = sms_form(params)  # typed and bounded like every Twilio form (400 naming the field)
    number = await _sms_number(directory, verified.account.space_id, form.to_number)
    if number is None:
        log.info("sms to a number we do not route", extra={"message_sid": form.message_sid})
        return Response(EMPTY_TWIML, media_type="application/xml")
    thread = Thread(number.space_id, number.id, number.e164, form.from_number)
    sms = m.InboundSms(form.message_sid, form.body, _media(params, form.num_media))
    await SmsClient(await temporal.client(), settings.task_queue).deliver_inbound(thread, sms)
    return Response(EMPTY_TWIML, media_type="application/xml")


@router.post(m.WEBHOOK_SMS_STATUS_PATH, status_code=status.HTTP_204_NO_CONTENT)
async def sms_status(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    verified: VerifiedTwilio,
) -> None:
    """Delivery reports (queued, sent, delivered, undelivered, failed + ErrorCode), in any order."""
    form = sms_status_form(verified.params)
    carrier_status = m.CARRIER_STATUSES[form.message_status]
    thread_id = request.query_params.get(m.STATUS_QUERY_THREAD, "")
    message_id = request.query_params.get(m.STATUS_QUERY_MESSAGE, "")
    message = await session.get(Message, message_id) if message_id else None
    space_id = verified.account.space_id
    if message is None or message.space_id != space_id or m.space_of_thread(thread_id) != space_id:
        log.info("sms status for no message of this space", extra={"message_sid": form.message_sid})
        return
    error_code = form.error_code
    report = m.DeliveryReport(message.id, carrier_status, form.message_sid, error_code)
    if await SmsClient(await temporal.client(), settings.task_queue).report_delivery(thread_id, report):
        return
    # The thread's run completed (idle): the report still reaches the message, with the same ordering rule.
    current = m.DeliveryStatus(message.delivery_status) if message.delivery_status else None
    if m.status_advances(current, carrier_status):
        message.delivery_status = carrier_status.value
        message.error_code = error_code if error_code is not None else message.error_code
        message.carrier_message_sid = message.carrier_message_sid or form.message_sid
        await session.commit()
