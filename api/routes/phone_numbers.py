from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, status
from fastapi.exceptions import RequestValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.carrier_workflows import purchase_number, release_number
from api.crud import apply, get_in_space, revalidate
from api.deps import Admin, ForgetsCarrierDirectory, ResourceId, SessionDep, SettingsDep, TemporalDep, Viewer
from api.errors import error_responses
from api.number_ownership import ensure_number_can_join
from api.pagination import CursorQuery, LimitQuery, paginate
from api.provisioning import request_provisioning
from api.temporal import TemporalGateway
from models.schemas.common import Page
from models.schemas.phone_numbers import (
    PhoneNumberCreate,
    PhoneNumberOut,
    PhoneNumberPort,
    PhoneNumberPurchase,
    PhoneNumberUpdate,
    Routing,
)
from models.settings import Settings
from models.tables import Agent, CarrierAccount, PhoneNumber, SipTrunk

router = APIRouter(
    prefix="/v1/spaces/{space_id}/phone-numbers", tags=["phone numbers"], dependencies=[ForgetsCarrierDirectory]
)

ROUTING_FIELDS = set(Routing.model_fields)


def _invalid(field: str, reason: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ("body", field), "msg": reason}])


async def _check_references(session: AsyncSession, space_id: str, values: dict[str, Any]) -> None:
    """Referenced agent, trunk and carrier account must exist in this space (422 names the field)."""
    for field, model in (
        ("agent_id", Agent),
        ("sip_trunk_id", SipTrunk),
        ("carrier_account_id", CarrierAccount),
    ):
        ref = values.get(field)
        if ref is None:
            continue
        row = await session.get(model, ref)
        if row is None or getattr(row, "space_id", None) != space_id:
            raise _invalid(field, f"no {field.removesuffix('_id').replace('_', ' ')} {ref!r} in this space")


async def _reprovision_trunks(
    session: AsyncSession, trunk_ids: set[str | None], settings: Settings, temporal: TemporalGateway
) -> None:
    """A trunk's LiveKit inbound side lists its numbers: re-apply it when they change."""
    for trunk_id in sorted(t for t in trunk_ids if t):
        trunk = await session.get(SipTrunk, trunk_id)
        if trunk is not None:
            await request_provisioning(session, trunk, settings, temporal)


async def _create(
    session: AsyncSession,
    space_id: str,
    values: dict[str, Any],
    settings: Settings,
    temporal: TemporalGateway,
) -> PhoneNumberOut:
    await _check_references(session, space_id, values)
    await ensure_number_can_join(session, space_id, values["e164"])
    number = PhoneNumber(space_id=space_id, **values)
    session.add(number)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        await ensure_number_can_join(session, space_id, values["e164"])  # added meanwhile: the same answers
        raise
    await _reprovision_trunks(session, {number.sip_trunk_id}, settings, temporal)
    return PhoneNumberOut.model_validate(number)


@router.post("", status_code=status.HTTP_201_CREATED, responses=error_responses(409))
async def create_phone_number(
    body: PhoneNumberCreate, ctx: Admin, session: SessionDep, settings: SettingsDep, temporal: TemporalDep
) -> PhoneNumberOut:
    """Register a number the space already holds, over a SIP trunk or in a carrier account."""
    return await _create(session, ctx.space_id, body.model_dump(), settings, temporal)


@router.post("/port", status_code=status.HTTP_201_CREATED, responses=error_responses(409))
async def port_phone_number(
    body: PhoneNumberPort, ctx: Admin, session: SessionDep, settings: SettingsDep, temporal: TemporalDep
) -> PhoneNumberOut:
    """Port a number in by mapping it to one of the space's SIP trunks."""
    return await _create(session, ctx.space_id, body.model_dump(), settings, temporal)


@router.post("/purchase", status_code=status.HTTP_201_CREATED, responses=error_responses(409, 502, 503))
async def purchase_phone_number(
    body: PhoneNumberPurchase, ctx: Admin, session: SessionDep, settings: SettingsDep, temporal: TemporalDep
) -> PhoneNumberOut:
    """Buy a number through the carrier account; its webhooks are pointed at this platform."""
    values = body.model_dump()
    await _check_references(session, ctx.space_id, values)
    if body.e164:
        await ensure_number_can_join(session, ctx.space_id, body.e164)
    routing = {k: v for k, v in body.model_dump(mode="json").items() if k in ROUTING_FIELDS}
    phone_number_id = await purchase_number(temporal, settings, ctx.space_id, body, routing)
    number = await session.get(PhoneNumber, phone_number_id)
    assert number is not None
    return PhoneNumberOut.model_validate(number)


@router.get("")
async def list_phone_numbers(
    ctx: Viewer,
    session: SessionDep,
    e164: str | None = Query(default=None, max_length=16),
    limit: int = LimitQuery,
    cursor: str | None = CursorQuery,
) -> Page[PhoneNumberOut]:
    stmt = select(PhoneNumber).where(PhoneNumber.space_id == ctx.space_id)
    if e164:
        stmt = stmt.where(PhoneNumber.e164 == e164)
    rows, next_cursor = await paginate(session, stmt, PhoneNumber, limit, cursor)
    return Page(data=[PhoneNumberOut.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/{number_id}")
async def get_phone_number(number_id: ResourceId, ctx: Viewer, session: SessionDep) -> PhoneNumberOut:
    number = await get_in_space(session, PhoneNumber, ctx.space_id, number_id, "phone number")
    return PhoneNumberOut.model_validate(number)


@router.patch("/{number_id}")
async def update_phone_number(
    number_id: ResourceId,
    body: PhoneNumberUpdate,
    ctx: Admin,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> PhoneNumberOut:
    number = await get_in_space(session, PhoneNumber, ctx.space_id, number_id, "phone number")
    patch = body.model_dump(exclude_unset=True)
    if "sip_trunk_id" in patch and number.sip_trunk_id is None:
        raise _invalid("sip_trunk_id", "a carrier-hosted number cannot be moved to a SIP trunk")
    if patch.get("route_type") == "flow":
        patch.setdefault("agent_id", None)
    if patch.get("route_type") == "agent":
        patch.setdefault("flow_id", None)
    current = PhoneNumberOut.model_validate(number).model_dump()
    merged = {**{k: current[k] for k in PhoneNumberCreate.model_fields if k in current}, **patch}
    revalidate(PhoneNumberCreate, merged)
    await _check_references(session, ctx.space_id, patch)
    old_trunk = number.sip_trunk_id
    apply(number, patch)
    await session.commit()
    await _reprovision_trunks(session, {old_trunk, number.sip_trunk_id}, settings, temporal)
    return PhoneNumberOut.model_validate(number)


@router.delete("/{number_id}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(502, 503))
async def delete_phone_number(
    number_id: ResourceId,
    ctx: Admin,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    release: bool = Query(default=False, description="Also release a purchased number at the carrier"),
) -> None:
    number = await get_in_space(session, PhoneNumber, ctx.space_id, number_id, "phone number")
    if release and number.carrier_account_id and number.carrier_number_sid:
        await release_number(temporal, settings, number)
    trunk_id = number.sip_trunk_id
    await session.delete(number)
    await session.commit()
    await _reprovision_trunks(session, {trunk_id}, settings, temporal)
