"""Twilio's answering-machine detection callback (``AsyncAmdStatusCallback`` of the calls we place with
``AsyncAmd=true``): verified exactly as the other Twilio webhooks (signature over the public URL and the raw form,
the signing account's space), typed and bounded, then reported to the call's workflow (first report wins there, so a
retried callback has one effect). Another space's call is refused (404) and nothing is signalled."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, Request, status

from api.deps import TemporalDep
from api.errors import error_responses
from api.webhooks.twilio_auth import VerifiedTwilio
from api.webhooks.twilio_form import amd_form
from models.amd import carrier_report
from models.call_contract import STREAM_WORKFLOW_PARAMETER, belongs_to, call_workflow_id
from workflows.call_client import CallActionRefused, CallNotRunning

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks/twilio", tags=["webhooks"])


@router.post("/amd", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404, 409))
async def answered_by(
    request: Request,
    temporal: TemporalDep,
    verified: VerifiedTwilio,
) -> None:
    """Who answered one of our outbound calls, by the carrier's AMD: recorded on the call; a machine on a call
    whose policy is to hang up ends it."""
    space_id = verified.account.space_id
    form = amd_form(verified.params)
    # Our callback URL names the call's workflow (covered by the signature); without it, the carrier's call id.
    workflow_id = request.query_params.get(STREAM_WORKFLOW_PARAMETER) or call_workflow_id(space_id, form.call_sid)
    if not belongs_to(workflow_id, space_id):
        log.warning("AMD callback for another space's call refused", extra={"call_sid": form.call_sid})
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no call of this account by that id")
    calls = await temporal.calls()
    report = carrier_report(form.answered_by, form.machine_detection_duration)
    try:
        await calls.call(workflow_id, space_id=space_id).report_answered_by(report)
    except CallNotRunning:
        log.info("AMD callback after the call ended", extra={"call_sid": form.call_sid})  # nothing left to decide
    except CallActionRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, exc.reason) from exc
    log.info("AMD result from the carrier", extra={"call_sid": form.call_sid, "answered_by": report.answered_by.value})
