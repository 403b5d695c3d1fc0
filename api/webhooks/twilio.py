"""Twilio voice and status webhooks: verify the signature over the raw form, answer TwiML, start or
signal the call's workflow. Unknown accounts and bad signatures get 403 and start nothing."""

from __future__ import annotations

import logging
import time
import xml.etree.ElementTree as ET

from fastapi import APIRouter, Request, Response, status

from api.carrier_directory import KnownNumber
from api.deps import DirectoryDep, SecretBoxDep, SettingsDep, TemporalDep
from api.webhooks.twilio_auth import VerifiedTwilio
from api.webhooks.twilio_form import status_form, voice_form
from models import calls as c
from models.call_contract import (
    STREAM_WORKFLOW_PARAMETER,
    belongs_to,
    call_workflow_id,
    media_stream_twiml,
    stream_ended_url,
    twilio_inbound_call,
)
from models.enums import MediaMode
from models.secret_box import SecretBox
from models.settings import Settings
from models.sip_headers import WORKFLOW_ID_HEADER

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks/twilio", tags=["webhooks"])

TWIML = "application/xml"


def _twiml(build: ET.Element) -> Response:
    return Response(ET.tostring(build, encoding="unicode", xml_declaration=True), media_type=TWIML)


def _reject(reason: str = "rejected") -> Response:
    response = ET.Element("Response")
    ET.SubElement(response, "Reject", reason=reason)
    return _twiml(response)


def _bridge_to_livekit(settings: Settings, number: KnownNumber, workflow_id: str) -> Response:
    response = ET.Element("Response")
    dial = ET.SubElement(response, "Dial", answerOnBridge="true")
    sip = ET.SubElement(dial, "Sip")
    sip.text = f"sip:{number.e164}@{settings.livekit_sip_host};transport=tcp?{WORKFLOW_ID_HEADER}={workflow_id}"
    return _twiml(response)


def media_stream(settings: Settings, box: SecretBox, workflow_id: str, stream_no: int = 0) -> Response:
    """Connect the call's audio to our media-stream servers, bound to this call by a short-lived token; the
    carrier reports the stream's end to ``<Connect action>`` (``api/webhooks/twilio_stream.py``)."""
    action = stream_ended_url(settings.public_url, workflow_id, stream_no)
    twiml = media_stream_twiml(settings.stream_public_url, box, workflow_id, time.time(), action_url=action)
    return Response(twiml, media_type=TWIML)


def hang_up() -> Response:
    response = ET.Element("Response")
    ET.SubElement(response, "Hangup")
    return _twiml(response)


@router.post("/voice", response_class=Response, responses={200: {"content": {TWIML: {}}}})
async def voice(
    request: Request,
    box: SecretBoxDep,
    directory: DirectoryDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    verified: VerifiedTwilio,
) -> Response:
    """A call reaches one of our numbers: answer with TwiML and start its CallWorkflow."""
    params, space_id = verified.params, verified.account.space_id
    voice_form(params)  # typed and bounded: every field a workflow will see is checked (400 otherwise)
    placed = request.query_params.get(STREAM_WORKFLOW_PARAMETER)
    if placed is not None:
        # A call we asked the carrier to dial was answered: stream its media. The signature proves the URL
        # came from this account; the call must be of the account's space.
        return media_stream(settings, box, placed) if belongs_to(placed, space_id) else _reject()
    number = await directory.number(space_id, params["To"])
    if number is None:
        log.info("call to a number we do not route: rejected", extra={"call_sid": params["CallSid"]})
        return _reject()
    start = twilio_inbound_call(
        space_id=space_id,
        phone_number_id=number.id,
        media_mode=number.media_mode,
        call_sid=params["CallSid"],
        from_number=params["From"],
        to_number=params["To"],
    )
    call = await (await temporal.calls()).start(start)
    if call is None or not number.enabled:
        return _reject()
    if number.media_mode is MediaMode.STREAM:
        return media_stream(settings, box, start.workflow_id)
    if not settings.livekit_sip_host:
        log.error("number in LiveKit media mode but TELEPHONY_LIVEKIT_SIP_HOST unset", extra={"number_id": number.id})
        return _reject("busy")
    return _bridge_to_livekit(settings, number, start.workflow_id)


@router.post("/status", status_code=status.HTTP_204_NO_CONTENT)
async def call_status(
    request: Request,
    directory: DirectoryDep,
    temporal: TemporalDep,
    verified: VerifiedTwilio,
) -> None:
    """Twilio's call status callbacks, in whatever order they arrive, become signals."""
    params, space_id = verified.params, verified.account.space_id
    form = status_form(params)
    event = c.CarrierStatus(
        status=form.call_status, sip_response_code=form.sip_response_code, duration_seconds=form.call_duration
    )
    calls = await temporal.calls()
    placed = request.query_params.get(STREAM_WORKFLOW_PARAMETER)
    if placed is not None:
        await calls.call(placed, space_id=space_id).carrier_status(event)
        return
    inbound = params.get("Direction", "inbound") == "inbound"
    number = await directory.number(space_id, params.get("To", "")) if inbound else None
    if number is None:
        # Not a call to one of this space's numbers: only a running call of this space can hear of it.
        await calls.call(call_workflow_id(space_id, params["CallSid"]), space_id=space_id).carrier_status(event)
        return
    start = twilio_inbound_call(
        space_id=space_id,
        phone_number_id=number.id,
        media_mode=number.media_mode,
        call_sid=params["CallSid"],
        from_number=params.get("From", ""),
        to_number=params.get("To", ""),
    )
    await calls.start(start, event)
