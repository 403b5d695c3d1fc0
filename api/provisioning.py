"""Hands SIP trunk (de)provisioning with LiveKit to Temporal workflows; records what it could not do."""

from __future__ import annotations

import logging

from fastapi import HTTPException
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from api.temporal import TemporalGateway
from models.enums import ProvisioningStatus
from models.settings import Settings
from models.tables import SipTrunk
from models.workflow_io import (
    DEPROVISION_SIP_TRUNK_WORKFLOW,
    PROVISION_SIP_TRUNK_WORKFLOW,
    DeprovisionSipTrunkInput,
    ProvisionSipTrunkInput,
    provision_workflow_id,
)

log = logging.getLogger(__name__)

NOT_CONFIGURED = "LiveKit is not configured (TELEPHONY_LIVEKIT_URL, _API_KEY, _API_SECRET): provisioning waits"


async def request_provisioning(
    session: AsyncSession, trunk: SipTrunk, settings: Settings, temporal: TemporalGateway
) -> None:
    """Mark the trunk's new configuration and start the workflow that applies it to LiveKit.

    Each change bumps ``config_version``; a newer request replaces a running workflow, and the activity
    only marks the trunk provisioned for the version it applied.
    """
    trunk.config_version += 1
    if not settings.livekit_configured:
        trunk.provisioning_status = ProvisioningStatus.PENDING
        trunk.provisioning_error = NOT_CONFIGURED
        await session.commit()
        return
    trunk.provisioning_status = ProvisioningStatus.PROVISIONING
    trunk.provisioning_error = None
    await session.commit()
    try:
        client = await temporal.client()
        await client.start_workflow(
            PROVISION_SIP_TRUNK_WORKFLOW,
            ProvisionSipTrunkInput(space_id=trunk.space_id, trunk_id=trunk.id),
            id=provision_workflow_id(trunk.id),
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.TERMINATE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )
    except HTTPException:
        log.warning("trunk provisioning deferred: workflow engine unavailable", extra={"trunk_id": trunk.id})
        trunk.provisioning_status = ProvisioningStatus.PENDING
        trunk.provisioning_error = "workflow engine unavailable: POST …/provision to retry"
        await session.commit()


async def request_deprovisioning(trunk: SipTrunk, settings: Settings, temporal: TemporalGateway) -> None:
    livekit_ids = [i for i in (trunk.livekit_inbound_trunk_id, trunk.livekit_outbound_trunk_id) if i]
    rules = [trunk.livekit_dispatch_rule_id] if trunk.livekit_dispatch_rule_id else []
    if not (livekit_ids or rules):
        return
    if not settings.livekit_configured:
        log.warning("LiveKit trunk left in place: LiveKit not configured", extra={"trunk_id": trunk.id})
        return
    client = await temporal.client()
    await client.start_workflow(
        DEPROVISION_SIP_TRUNK_WORKFLOW,
        DeprovisionSipTrunkInput(
            space_id=trunk.space_id, trunk_id=trunk.id, livekit_ids=livekit_ids, dispatch_rule_ids=rules
        ),
        id=f"{provision_workflow_id(trunk.id)}-delete",
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
