"""Carrier operations run as Temporal workflows (durable, retried); the API waits for their outcome."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from fastapi import HTTPException, status
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from api.temporal import TemporalGateway
from models.schemas.phone_numbers import PhoneNumberPurchase
from models.settings import Settings
from models.tables import PhoneNumber
from models.workflow_io import (
    CARRIER_AUTH_FAILED,
    CARRIER_REJECTED,
    PURCHASE_NUMBER_WORKFLOW,
    RELEASE_NUMBER_WORKFLOW,
    PurchaseNumberInput,
    PurchaseNumberResult,
    ReleaseNumberInput,
)

CARRIER_DEADLINE = timedelta(seconds=60)


def _carrier_error(exc: WorkflowFailureError) -> HTTPException:
    cause: BaseException | None = exc.cause
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.__cause__
    if isinstance(cause, ApplicationError) and cause.type == CARRIER_REJECTED:
        return HTTPException(status.HTTP_409_CONFLICT, f"carrier refused: {cause.message}")
    if isinstance(cause, ApplicationError) and cause.type == CARRIER_AUTH_FAILED:
        return HTTPException(status.HTTP_502_BAD_GATEWAY, "carrier rejected the account credentials")
    return HTTPException(status.HTTP_502_BAD_GATEWAY, "carrier operation failed")


async def purchase_number(
    temporal: TemporalGateway,
    settings: Settings,
    space_id: str,
    body: PhoneNumberPurchase,
    routing: dict[str, Any],
) -> str:
    client = await temporal.client()
    try:
        result: PurchaseNumberResult = await client.execute_workflow(
            PURCHASE_NUMBER_WORKFLOW,
            PurchaseNumberInput(
                space_id=space_id,
                carrier_account_id=body.carrier_account_id,
                e164=body.e164,
                area_code=body.area_code,
                iso_country=body.iso_country,
                routing=routing,
            ),
            id=f"purchase-number-{uuid.uuid4().hex}",
            task_queue=settings.task_queue,
            execution_timeout=CARRIER_DEADLINE,
            result_type=PurchaseNumberResult,
        )
    except WorkflowFailureError as exc:
        raise _carrier_error(exc) from exc
    return result.phone_number_id


async def release_number(temporal: TemporalGateway, settings: Settings, number: PhoneNumber) -> None:
    assert number.carrier_account_id and number.carrier_number_sid
    client = await temporal.client()
    try:
        await client.execute_workflow(
            RELEASE_NUMBER_WORKFLOW,
            ReleaseNumberInput(
                space_id=number.space_id,
                carrier_account_id=number.carrier_account_id,
                carrier_number_sid=number.carrier_number_sid,
            ),
            id=f"release-number-{number.id}",
            task_queue=settings.task_queue,
            execution_timeout=CARRIER_DEADLINE,
        )
    except WorkflowFailureError as exc:
        raise _carrier_error(exc) from exc
