"""Twilio voice and status webhooks: verify the signature over the raw form, answer TwiML, start or
signal the call's workflow. Unknown accounts and bad signatures get 403 and start nothing."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, Header, Request, Response, status
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import SecretBoxDep, SessionDep, SettingsDep, TemporalDep
from api.webhooks.calls import call_id_for, signal_call, start_call
from api.webhooks.twilio_auth import verified_twilio_request
from api.webhooks.twilio_form import status_form, voice_form
from models import calls as c
from models.enums import CallDirection, MediaMode
from models.settings import Settings
from models.sip_headers import WORKFLOW_ID_HEADER
from models.tables import Call, CarrierAccount, PhoneNumber

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks/twilio", tags=["webhooks"])

TWIML = "application/xml"


async def _our_number(session: AsyncSession, account: CarrierAccount, e164: str) -> PhoneNumber | None:
    return await session.scalar(
        select(PhoneNumber).where(PhoneNumber.e164 == e164, PhoneNumber.space_id == account.space_id)
    )


def _twiml(build: ET.Element) -> Response:
    return Response(ET.tostring(build, encoding="unicode", xml_declaration=True), media_type=TWIML)


def _reject(reason: str = "rejected") -> Response:
    response = ET.Element("Response")
    ET.SubElement(response, "Reject", reason=reason)
    return _twiml(response)


def _answer(settings: Settings, number: PhoneNumber, start: c.StartCall) -> Response:
    if number.media_mode is MediaMode.STREAM:
        return _media_stream(settings, start.call_id, start.workflow_id)
    response = ET.Element("Response")
    dial = ET.SubElement(response, "Dial", answerOnBridge="true")
    sip = ET.SubElement(dial, "Sip")
    sip.text = f"sip:{number.e164}@{settings.livekit_sip_host};transport=tcp?{WORKFLOW_ID_HEADER}={start.workflow_id}"
    return _twiml(response)


def _media_stream(settings: Settings, call_id: str, workflow_id: str) -> Response:
    response = ET.Element("Response")
    public = urlsplit(settings.public_url)
    scheme = "wss" if public.scheme == "https" else "ws"
    stream_url = urlunsplit((scheme, public.netloc, public.path.rstrip("/") + "/media/twilio", "", ""))
    stream = ET.SubElement(ET.SubElement(response, "Connect"), "Stream", url=stream_url)
    ET.SubElement(stream, "Parameter", name="call_id", value=call_id)
    ET.SubElement(stream, "Parameter", name="workflow_id", value=workflow_id)
    return _twiml(response)


def _start_for(params: dict[str, str], number: PhoneNumber, direction: CallDirection) -> c.StartCall:
    workflow_id = c.call_workflow_id(params["CallSid"])
    return c.StartCall(
        call_id=call_id_for(workflow_id),
        workflow_id=workflow_id,
        direction=direction,
        from_number=params.get("From", ""),
        to_number=params.get("To", ""),
        carrier_call_id=params["CallSid"],
        space_id=number.space_id,
        phone_number_id=number.id,
        media_mode=number.media_mode,
    )


async def _placed_call(session: AsyncSession, account: CarrierAccount, request: Request) -> Call | None:
    """The call named by the ``workflow_id`` we put in the URLs of a carrier call we placed.

    The signature proves the URL came from the account; the account must belong to the call's space."""
    workflow_id = request.query_params.get("workflow_id")
    if not workflow_id:
        return None
    call = await session.scalar(select(Call).where(Call.workflow_id == workflow_id))
    if call is None or call.space_id != account.space_id:
        log.warning("carrier webhook named a call of another space", extra={"account_id": account.id})
        return None
    return call


SignatureHeader = Annotated[str | None, Header(alias="X-Twilio-Signature")]


@router.post("/voice", response_class=Response, responses={200: {"content": {TWIML: {}}}})
async def voice(
    request: Request,
    session: SessionDep,
    box: SecretBoxDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    signature: SignatureHeader = None,
) -> Response:
    """A call reaches one of our numbers: answer with TwiML and start its CallWorkflow."""
    verified = await verified_twilio_request(request, session, box, settings, signature)
    params = verified.params
    voice_form(params)  # typed and bounded: every field a workflow will see is checked (400 otherwise)
    placed = await _placed_call(session, verified.account, request)
    if placed is not None:  # a call we asked the carrier to dial: it was answered, stream its media
        return _media_stream(settings, placed.id, placed.workflow_id)
    if request.query_params.get("workflow_id"):
        return _reject()
    number = await _our_number(session, verified.account, params["To"])
    if number is None:
        log.info("call to a number we do not route: rejected", extra={"call_sid": params["CallSid"]})
        return _reject()
    start = _start_for(params, number, CallDirection.INBOUND)
    client = await temporal.client()
    live = await start_call(client, settings.task_queue, start)
    if not live or not number.enabled:
        return _reject()
    if number.media_mode is MediaMode.LIVEKIT and not settings.livekit_sip_host:
        log.error("number in LiveKit media mode but TELEPHONY_LIVEKIT_SIP_HOST unset", extra={"number_id": number.id})
        return _reject("busy")
    return _answer(settings, number, start)


@router.post("/status", status_code=status.HTTP_204_NO_CONTENT)
async def call_status(
    request: Request,
    session: SessionDep,
    box: SecretBoxDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    signature: SignatureHeader = None,
) -> None:
    """Twilio's call status callbacks, in whatever order they arrive, become signals."""
    verified = await verified_twilio_request(request, session, box, settings, signature)
    params = verified.params
    form = status_form(params)
    event = c.CarrierStatus(
        status=form.call_status, sip_response_code=form.sip_response_code, duration_seconds=form.call_duration
    )
    client = await temporal.client()
    placed = await _placed_call(session, verified.account, request)
    if placed is not None:
        await signal_call(client, placed.workflow_id, c.SIGNAL_CARRIER_STATUS, event)
        return
    inbound = params.get("Direction", "inbound") == "inbound"
    ours = params.get("To" if inbound else "From", "")
    number = await _our_number(session, verified.account, ours)
    if number is None or not inbound:
        # Outbound calls were started by us: there is a workflow to signal, or nothing to do.
        await signal_call(client, c.call_workflow_id(params["CallSid"]), c.SIGNAL_CARRIER_STATUS, event)
        return
    start = _start_for(params, number, CallDirection.INBOUND)
    await start_call(client, settings.task_queue, start, c.SIGNAL_CARRIER_STATUS, event)
