"""Workflows buying and releasing carrier numbers: the purchase is recorded even if the API gave up."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.carrier_numbers import CarrierNumberActivities
    from models.workflow_io import (
        PURCHASE_NUMBER_WORKFLOW,
        RELEASE_NUMBER_WORKFLOW,
        PurchaseNumberInput,
        PurchaseNumberResult,
        ReleaseNumberInput,
    )

CARRIER_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=5,
)


@workflow.defn(name=PURCHASE_NUMBER_WORKFLOW)
class PurchaseNumberWorkflow:
    @workflow.run
    async def run(self, request: PurchaseNumberInput) -> PurchaseNumberResult:
        bought = await workflow.execute_activity_method(
            CarrierNumberActivities.buy_number,
            request,
            start_to_close_timeout=timedelta(seconds=15),
            retry_policy=CARRIER_RETRY,
        )
        try:
            return await workflow.execute_activity_method(
                CarrierNumberActivities.record_purchased_number,
                args=[request, bought],
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=CARRIER_RETRY,
            )
        except ActivityError as exc:
            # Never keep paying for a number nobody can route: give it back, then fail.
            workflow.logger.warning("purchased number not recorded; releasing it")
            await workflow.execute_activity_method(
                CarrierNumberActivities.release_number,
                ReleaseNumberInput(request.space_id, request.carrier_account_id, bought.carrier_number_sid),
                start_to_close_timeout=timedelta(seconds=15),
                retry_policy=CARRIER_RETRY,
            )
            cause = exc.cause
            if isinstance(cause, ApplicationError):
                raise ApplicationError(cause.message, type=cause.type, non_retryable=True) from exc
            raise


@workflow.defn(name=RELEASE_NUMBER_WORKFLOW)
class ReleaseNumberWorkflow:
    @workflow.run
    async def run(self, request: ReleaseNumberInput) -> None:
        await workflow.execute_activity_method(
            CarrierNumberActivities.release_number,
            request,
            start_to_close_timeout=timedelta(seconds=15),
            retry_policy=CARRIER_RETRY,
        )
