"""Activities applying a space's SIP trunk to LiveKit: inbound trunk, outbound trunk, dispatch rule."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from livekit import api as lk
from livekit.api.sip_service import SipService
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from models.enums import ProvisioningStatus, SipTransport
from models.secret_box import SecretBox
from models.sip_headers import WORKFLOW_ID_ATTRIBUTE, WORKFLOW_ID_HEADER
from models.tables import PhoneNumber, SipTrunk, utcnow
from models.workflow_io import DeprovisionSipTrunkInput, ProvisionSipTrunkInput, ProvisionSipTrunkResult

log = logging.getLogger(__name__)

ROOM_PREFIX = "call-"

TRANSPORTS = {
    SipTransport.UDP: lk.SIPTransport.SIP_TRANSPORT_UDP,
    SipTransport.TCP: lk.SIPTransport.SIP_TRANSPORT_TCP,
    SipTransport.TLS: lk.SIPTransport.SIP_TRANSPORT_TLS,
}
LIVEKIT_NOT_CONFIGURED = "LiveKitNotConfigured"
TRUNK_GONE = "TrunkGone"
LIVEKIT_REFUSED = "LiveKitRefused"


def _is_not_found(exc: lk.TwirpError) -> bool:
    return exc.status == 404 or exc.code == "not_found"


async def _update_or_create(
    current_id: str | None,
    update: Callable[[str], Awaitable[object]],
    create: Callable[[], Awaitable[str]],
) -> str:
    """Replace the LiveKit object we created before, or create it (again, if LiveKit lost it)."""
    if current_id:
        try:
            await update(current_id)
            return current_id
        except lk.TwirpError as exc:
            if not _is_not_found(exc):
                raise
    return await create()


def _livekit_failure(exc: lk.TwirpError) -> Exception:
    """LiveKit refusing the request itself (bad credentials, invalid trunk) is not fixed by retrying."""
    if 400 <= exc.status < 500 and exc.status not in (404, 408, 429):
        return ApplicationError(f"LiveKit refused: {exc.code}: {exc.message}", type=LIVEKIT_REFUSED, non_retryable=True)
    return exc


class SipTrunkActivities:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        secret_box: SecretBox,
        livekit: lk.LiveKitAPI | None,
    ) -> None:
        self._sessions = sessions
        self._box = secret_box
        self._livekit = livekit

    def _sip(self) -> SipService:
        if self._livekit is None:
            raise ApplicationError("LiveKit is not configured", type=LIVEKIT_NOT_CONFIGURED, non_retryable=True)
        return self._livekit.sip

    @activity.defn
    async def apply_sip_trunk(self, request: ProvisionSipTrunkInput) -> ProvisionSipTrunkResult:
        """Create or replace the trunk's LiveKit objects; each new id is saved as soon as it exists,
        so a retried attempt updates instead of creating twice."""
        try:
            return await self._apply(request)
        except lk.TwirpError as exc:
            raise _livekit_failure(exc) from exc

    async def _apply(self, request: ProvisionSipTrunkInput) -> ProvisionSipTrunkResult:
        sip = self._sip()
        async with self._sessions() as session:
            trunk = await session.get(SipTrunk, request.trunk_id)
            if trunk is None or trunk.space_id != request.space_id:
                raise ApplicationError("trunk was deleted", type=TRUNK_GONE, non_retryable=True)
            version = trunk.config_version
            numbers = list(
                await session.scalars(
                    select(PhoneNumber.e164).where(PhoneNumber.sip_trunk_id == trunk.id).order_by(PhoneNumber.e164)
                )
            )
            password = self._box.decrypt(trunk.auth_password_encrypted) if trunk.auth_password_encrypted else ""
            metadata = json.dumps({"space_id": trunk.space_id, "trunk_id": trunk.id})
            media = lk.SIPMediaConfig(only_listed_codecs=True, codecs=[lk.SIPCodec(name=str(c)) for c in trunk.codecs])
            name = f"{trunk.space_id}/{trunk.name}"
            inbound = lk.SIPInboundTrunkInfo(
                name=name,
                metadata=metadata,
                numbers=numbers,
                allowed_addresses=trunk.allowed_cidrs,
                auth_username=trunk.auth_username or "",
                auth_password=password,
                media=media,
                headers_to_attributes={WORKFLOW_ID_HEADER: WORKFLOW_ID_ATTRIBUTE},
            )
            outbound = lk.SIPOutboundTrunkInfo(
                name=name,
                metadata=metadata,
                address=trunk.sip_address,
                transport=TRANSPORTS[trunk.transport],
                numbers=numbers,
                auth_username=trunk.auth_username or "",
                auth_password=password,
                media=media,
            )

            async def create_inbound() -> str:
                created = await sip.create_inbound_trunk(lk.CreateSIPInboundTrunkRequest(trunk=inbound))
                return created.sip_trunk_id

            trunk.livekit_inbound_trunk_id = await _update_or_create(
                trunk.livekit_inbound_trunk_id, lambda i: sip.update_inbound_trunk(i, inbound), create_inbound
            )
            await session.commit()

            await self._apply_outbound(sip, session, trunk, outbound)

            rule = lk.SIPDispatchRuleInfo(
                name=name,
                metadata=metadata,
                trunk_ids=[trunk.livekit_inbound_trunk_id],
                # One room per call; the CallWorkflow dispatches the agent itself.
                rule=lk.SIPDispatchRule(dispatch_rule_individual=lk.SIPDispatchRuleIndividual(room_prefix=ROOM_PREFIX)),
            )

            async def create_rule() -> str:
                created = await sip.create_dispatch_rule(lk.CreateSIPDispatchRuleRequest(dispatch_rule=rule))
                return created.sip_dispatch_rule_id

            trunk.livekit_dispatch_rule_id = await _update_or_create(
                trunk.livekit_dispatch_rule_id, lambda i: sip.update_dispatch_rule(i, rule), create_rule
            )

            await session.refresh(trunk, ["config_version"])
            if trunk.config_version == version:
                trunk.provisioning_status = ProvisioningStatus.PROVISIONED
                trunk.provisioning_error = None
                trunk.provisioned_at = utcnow()
            await session.commit()
            log.info("SIP trunk applied to LiveKit", extra={"trunk_id": trunk.id, "version": version})
            return ProvisionSipTrunkResult(
                trunk_id=trunk.id,
                inbound_trunk_id=trunk.livekit_inbound_trunk_id,
                outbound_trunk_id=trunk.livekit_outbound_trunk_id,
                dispatch_rule_id=trunk.livekit_dispatch_rule_id,
            )

    @staticmethod
    async def _apply_outbound(
        sip: SipService, session: AsyncSession, trunk: SipTrunk, outbound: lk.SIPOutboundTrunkInfo
    ) -> None:
        """LiveKit dials out from a trunk's numbers: without numbers there is no outbound trunk."""
        if not outbound.numbers:
            if trunk.livekit_outbound_trunk_id:
                try:
                    await sip.delete_trunk(lk.DeleteSIPTrunkRequest(sip_trunk_id=trunk.livekit_outbound_trunk_id))
                except lk.TwirpError as exc:
                    if not _is_not_found(exc):
                        raise
                trunk.livekit_outbound_trunk_id = None
                await session.commit()
            return

        async def create_outbound() -> str:
            created = await sip.create_outbound_trunk(lk.CreateSIPOutboundTrunkRequest(trunk=outbound))
            return created.sip_trunk_id

        trunk.livekit_outbound_trunk_id = await _update_or_create(
            trunk.livekit_outbound_trunk_id, lambda i: sip.update_outbound_trunk(i, outbound), create_outbound
        )
        await session.commit()

    @activity.defn
    async def mark_trunk_failed(self, request: ProvisionSipTrunkInput, error: str) -> None:
        async with self._sessions() as session:
            trunk = await session.get(SipTrunk, request.trunk_id)
            if trunk is not None:
                trunk.provisioning_status = ProvisioningStatus.FAILED
                trunk.provisioning_error = error[:2000]
                await session.commit()

    @activity.defn
    async def delete_livekit_sip_objects(self, request: DeprovisionSipTrunkInput) -> None:
        sip = self._sip()
        for rule_id in request.dispatch_rule_ids:
            try:
                await sip.delete_dispatch_rule(lk.DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule_id))
            except lk.TwirpError as exc:
                if not _is_not_found(exc):
                    raise _livekit_failure(exc) from exc
        for trunk_id in request.livekit_ids:
            try:
                await sip.delete_trunk(lk.DeleteSIPTrunkRequest(sip_trunk_id=trunk_id))
            except lk.TwirpError as exc:
                if not _is_not_found(exc):
                    raise _livekit_failure(exc) from exc
