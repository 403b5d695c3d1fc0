from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from sqlalchemy import select

from api.crud import UNCHANGED_SECRET, apply, encrypt_or_keep, ensure_unused, get_in_space, revalidate
from api.deps import Admin, ResourceId, SecretBoxDep, SessionDep, SettingsDep, TemporalDep, Viewer
from api.errors import error_responses
from api.pagination import CursorQuery, LimitQuery, paginate
from api.provisioning import request_deprovisioning, request_provisioning
from models.schemas.common import Page
from models.schemas.sip_trunks import SipTrunkCreate, SipTrunkFields, SipTrunkOut, SipTrunkUpdate
from models.secret_box import SecretBox
from models.tables import PhoneNumber, SipTrunk

router = APIRouter(prefix="/v1/spaces/{space_id}/sip-trunks", tags=["sip trunks"])


async def _out(session: Any, trunk: SipTrunk) -> SipTrunkOut:
    numbers = await session.scalars(
        select(PhoneNumber.e164).where(PhoneNumber.sip_trunk_id == trunk.id).order_by(PhoneNumber.e164)
    )
    return SipTrunkOut.model_validate(
        {
            "id": trunk.id,
            "space_id": trunk.space_id,
            "name": trunk.name,
            "sip_address": trunk.sip_address,
            "transport": trunk.transport,
            "auth_username": trunk.auth_username,
            "has_auth_password": trunk.auth_password_encrypted is not None,
            "allowed_cidrs": trunk.allowed_cidrs,
            "codecs": trunk.codecs,
            "cps": trunk.cps,
            "numbers": list(numbers),
            "provisioning": {
                "status": trunk.provisioning_status,
                "error": trunk.provisioning_error,
                "livekit_inbound_trunk_id": trunk.livekit_inbound_trunk_id,
                "livekit_outbound_trunk_id": trunk.livekit_outbound_trunk_id,
                "livekit_dispatch_rule_id": trunk.livekit_dispatch_rule_id,
                "provisioned_at": trunk.provisioned_at,
            },
            "created_at": trunk.created_at,
            "updated_at": trunk.updated_at,
        }
    )


def _columns(fields: SipTrunkFields, box: SecretBox, keep_password: str | None) -> dict[str, Any]:
    values = fields.model_dump(exclude={"auth_password"}, mode="json")
    values["auth_password_encrypted"] = encrypt_or_keep(box, fields.auth_password, keep_password)
    return values


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_sip_trunk(
    body: SipTrunkCreate,
    ctx: Admin,
    session: SessionDep,
    box: SecretBoxDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> SipTrunkOut:
    trunk = SipTrunk(space_id=ctx.space_id, config_version=0, **_columns(body, box, None))
    session.add(trunk)
    await session.flush()
    await request_provisioning(session, trunk, settings, temporal)
    return await _out(session, trunk)


@router.get("")
async def list_sip_trunks(
    ctx: Viewer, session: SessionDep, limit: int = LimitQuery, cursor: str | None = CursorQuery
) -> Page[SipTrunkOut]:
    stmt = select(SipTrunk).where(SipTrunk.space_id == ctx.space_id)
    rows, next_cursor = await paginate(session, stmt, SipTrunk, limit, cursor)
    return Page(data=[await _out(session, r) for r in rows], next_cursor=next_cursor)


@router.get("/{trunk_id}")
async def get_sip_trunk(trunk_id: ResourceId, ctx: Viewer, session: SessionDep) -> SipTrunkOut:
    return await _out(session, await get_in_space(session, SipTrunk, ctx.space_id, trunk_id, "SIP trunk"))


@router.patch("/{trunk_id}")
async def update_sip_trunk(
    trunk_id: ResourceId,
    body: SipTrunkUpdate,
    ctx: Admin,
    session: SessionDep,
    box: SecretBoxDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> SipTrunkOut:
    trunk = await get_in_space(session, SipTrunk, ctx.space_id, trunk_id, "SIP trunk")
    current: dict[str, Any] = {
        "name": trunk.name,
        "sip_address": trunk.sip_address,
        "transport": trunk.transport,
        "auth_username": trunk.auth_username,
        "auth_password": UNCHANGED_SECRET if trunk.auth_password_encrypted else None,
        "allowed_cidrs": trunk.allowed_cidrs,
        "codecs": trunk.codecs,
        "cps": trunk.cps,
    }
    patch = body.model_dump(exclude_unset=True, mode="json")
    if body.auth_password is not None:
        patch["auth_password"] = body.auth_password.get_secret_value()
    merged = revalidate(SipTrunkFields, {**current, **patch})
    apply(trunk, _columns(merged, box, trunk.auth_password_encrypted))
    await request_provisioning(session, trunk, settings, temporal)
    return await _out(session, trunk)


@router.post("/{trunk_id}/provision", status_code=status.HTTP_202_ACCEPTED)
async def reprovision_sip_trunk(
    trunk_id: ResourceId, ctx: Admin, session: SessionDep, settings: SettingsDep, temporal: TemporalDep
) -> SipTrunkOut:
    """Apply the trunk's configuration to LiveKit again (after a failure, or once LiveKit is configured)."""
    trunk = await get_in_space(session, SipTrunk, ctx.space_id, trunk_id, "SIP trunk")
    await request_provisioning(session, trunk, settings, temporal)
    return await _out(session, trunk)


@router.delete("/{trunk_id}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(409, 503))
async def delete_sip_trunk(
    trunk_id: ResourceId, ctx: Admin, session: SessionDep, settings: SettingsDep, temporal: TemporalDep
) -> None:
    trunk = await get_in_space(session, SipTrunk, ctx.space_id, trunk_id, "SIP trunk")
    await ensure_unused(session, PhoneNumber.sip_trunk_id, trunk.id, "SIP trunk")
    await request_deprovisioning(trunk, settings, temporal)
    await session.delete(trunk)
    await session.commit()
