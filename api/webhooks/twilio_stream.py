"""Twilio's ``<Connect action>`` for our media streams: the carrier requests it the moment a call's stream ends
(the socket closed: the media process died, or hung up). Verified exactly as the other Twilio webhooks (signature
over the public URL, whose query names the call's workflow and the stream's number, and the raw form), then told
to the call's workflow, which moves the call at once; the answer is the TwiML the carrier follows next: a new
``<Connect><Stream>`` (any media process takes it) or a hang-up when the call is over. A retried request gets the
same stream (one move); another space's call is refused (404) and nothing is told."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, Request, Response, status

from api.deps import SecretBoxDep, SettingsDep, TemporalDep
from api.errors import error_responses
from api.webhooks.twilio import TWIML, hang_up, media_stream
from api.webhooks.twilio_auth import VerifiedTwilio
from api.webhooks.twilio_form import status_form
from models import calls as c
from models.call_contract import (
    CARRIER_END_REASONS,
    MAX_STREAM_NO,
    STREAM_ENDED_PATH,
    STREAM_NUMBER_PARAMETER,
    STREAM_WORKFLOW_PARAMETER,
    belongs_to,
)
from workflows.call_client import CallActionRefused, CallNotRunning

log = logging.getLogger(__name__)
router = APIRouter(tags=["webhooks"])


def _stream_no(request: Request) -> int:
    raw = request.query_params.get(STREAM_NUMBER_PARAMETER, "")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 4 and int(raw) <= MAX_STREAM_NO):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"{STREAM_NUMBER_PARAMETER}: a stream number of ours")
    return int(raw)


@router.post(
    STREAM_ENDED_PATH,
    response_class=Response,
    responses={200: {"content": {TWIML: {}}}, **error_responses(400, 404, 409)},
)
async def stream_ended(
    request: Request,
    box: SecretBoxDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    verified: VerifiedTwilio,
) -> Response:
    """A call's media stream ended: TwiML for what the call does next (a new stream, or hang up)."""
    space_id = verified.account.space_id
    form = status_form(verified.params)
    workflow_id = request.query_params.get(STREAM_WORKFLOW_PARAMETER, "")
    stream_no = _stream_no(request)
    if not belongs_to(workflow_id, space_id):
        log.warning("stream-ended callback for another space's call refused", extra={"call_sid": form.call_sid})
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no call of this account by that id")
    if form.call_status in CARRIER_END_REASONS:  # the caller hung up: the status callback tells the call
        return hang_up()
    calls = await temporal.calls()
    try:
        answer = await calls.call(workflow_id, space_id=space_id).stream_ended(c.StreamEnded(stream_no))
    except CallNotRunning:
        log.info("stream ended after its call did", extra={"call_sid": form.call_sid})
        return hang_up()
    except CallActionRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, exc.reason) from exc
    if answer.next_stream_no is None:
        return hang_up()
    log.info("media stream ended mid-call: moved to a new stream", extra={"call_sid": form.call_sid})
    return media_stream(settings, box, workflow_id, answer.next_stream_no)
