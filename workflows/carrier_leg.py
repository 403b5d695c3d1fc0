"""The carrier's leg of a media-stream call: dialed and hung up through the carrier's REST API.

Called from ``CallWorkflow``; kept apart so the workflow module stays about the state machine."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.carrier_calls import CarrierCallActivities
    from models import calls as c
    from models.carrier_calls import (
        CarrierCallPlaced,
        EndCarrierCallInput,
        PlaceCarrierCallInput,
        RedirectCarrierCallInput,
    )
    from workflows.failures import failure_reason

PLACE_ONCE = RetryPolicy(maximum_attempts=1)  # a retried dial could ring the callee twice
HANGUP_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=10), maximum_attempts=10)


async def place(start: c.StartCall, route: c.CallRoute) -> CarrierCallPlaced | str:
    """The carrier's call id, or why the carrier would not dial."""
    assert route.space_id and route.phone_number_id
    request = PlaceCarrierCallInput(
        space_id=route.space_id,
        phone_number_id=route.phone_number_id,
        call_id=start.call_id,
        workflow_id=workflow.info().workflow_id,
        to_number=start.to_number,
        from_number=start.from_number,
        ringing_timeout_seconds=route.ringing_timeout_seconds,
    )
    try:
        return await workflow.execute_activity_method(
            CarrierCallActivities.place_carrier_call,
            request,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=PLACE_ONCE,
        )
    except ActivityError as exc:
        return failure_reason(exc)


async def redirect(route: c.CallRoute, carrier_call_id: str, target: str) -> c.SipOutcome:
    """Cold-transfer the carrier's leg to ``target``; the outcome in the shape LiveKit transfers use."""
    assert route.space_id and route.phone_number_id
    request = RedirectCarrierCallInput(route.space_id, route.phone_number_id, carrier_call_id, target)
    try:
        result = await workflow.execute_activity_method(
            CarrierCallActivities.redirect_carrier_call,
            request,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=PLACE_ONCE,
        )
    except ActivityError as exc:
        return c.SipOutcome(ok=False, error=failure_reason(exc))
    return c.SipOutcome(ok=result.ok, error=result.error)


async def hang_up(route: c.CallRoute, carrier_call_id: str) -> str | None:
    """End the carrier's leg; None when done, else why not."""
    assert route.space_id and route.phone_number_id
    request = EndCarrierCallInput(route.space_id, route.phone_number_id, carrier_call_id)
    try:
        await workflow.execute_activity_method(
            CarrierCallActivities.end_carrier_call,
            request,
            start_to_close_timeout=timedelta(seconds=15),
            retry_policy=HANGUP_RETRY,
        )
    except ActivityError as exc:
        return failure_reason(exc)
    return None
