"""Workflows applying SIP trunk configuration to LiveKit, with retries, and removing it."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.livekit_sip import TRUNK_GONE, SipTrunkActivities
    from models.workflow_io import (
        DEPROVISION_SIP_TRUNK_WORKFLOW,
        PROVISION_SIP_TRUNK_WORKFLOW,
        DeprovisionSipTrunkInput,
        ProvisionSipTrunkInput,
        ProvisionSipTrunkResult,
    )

LIVEKIT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=8,
)


@workflow.defn(name=PROVISION_SIP_TRUNK_WORKFLOW)
class ProvisionSipTrunkWorkflow:
    @workflow.run
    async def run(self, request: ProvisionSipTrunkInput) -> ProvisionSipTrunkResult | None:
        try:
            return await workflow.execute_activity_method(
                SipTrunkActivities.apply_sip_trunk,
                request,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=LIVEKIT_RETRY,
            )
        except ActivityError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError) and cause.type == TRUNK_GONE:
                return None
            reason = cause.message if isinstance(cause, ApplicationError) else str(cause or exc)
            workflow.logger.warning("SIP trunk provisioning failed", extra={"trunk_id": request.trunk_id})
            await workflow.execute_activity_method(
                SipTrunkActivities.mark_trunk_failed,
                args=[request, reason],
                start_to_close_timeout=timedelta(seconds=10),
            )
            raise ApplicationError(f"provisioning failed: {reason}", non_retryable=True) from exc


@workflow.defn(name=DEPROVISION_SIP_TRUNK_WORKFLOW)
class DeprovisionSipTrunkWorkflow:
    @workflow.run
    async def run(self, request: DeprovisionSipTrunkInput) -> None:
        await workflow.execute_activity_method(
            SipTrunkActivities.delete_livekit_sip_objects,
            request,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=LIVEKIT_RETRY,
        )
