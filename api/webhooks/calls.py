"""Hands carrier and LiveKit call events to the CallWorkflow: start, signal, or signal-with-start."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from models import calls as c
from models.enums import CallState

log = logging.getLogger(__name__)


def _search_attributes(start: c.StartCall) -> TypedSearchAttributes:
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(c.SA_CALL_STATE, CallState.RINGING.value),
        SearchAttributePair(c.SA_CALL_DIRECTION, start.direction.value),
    ]
    if start.space_id:
        pairs.append(SearchAttributePair(c.SA_SPACE_ID, start.space_id))
    return TypedSearchAttributes(pairs)


async def start_call(
    client: Client,
    task_queue: str,
    start: c.StartCall,
    signal: str | None = None,
    signal_arg: object | None = None,
) -> bool:
    """Start the call's workflow, or reach the running one (signal-with-start). False: the call is over.

    A retried webhook lands on the same workflow id; a call that already ended is never started again.
    """
    try:
        await client.start_workflow(
            c.CALL_WORKFLOW,
            start,
            id=start.workflow_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=c.CALL_ID_REUSE_POLICY,
            search_attributes=_search_attributes(start),
            start_signal=signal,
            start_signal_args=[signal_arg] if signal else [],
        )
    except WorkflowAlreadyStartedError:
        log.info("event for a call that already ended", extra={"workflow_id": start.workflow_id})
        return False
    return True


async def signal_call(client: Client, workflow_id: str, signal: str, arg: object) -> bool:
    """Signal a running call; False when there is none (unknown, or already ended)."""
    try:
        await client.get_workflow_handle(workflow_id).signal(signal, arg)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            log.info("event for no running call", extra={"workflow_id": workflow_id})
            return False
        raise
    return True


def call_id_for(workflow_id: str) -> str:
    """The Call row id of a carrier-started call, fixed by its workflow id so retries agree on it."""
    return "call_" + hashlib.sha256(workflow_id.encode()).hexdigest()[:32]
