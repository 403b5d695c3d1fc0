from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import select

from api.crud import ensure_unused, get_in_space
from api.deps import Admin, ForgetsCarrierDirectory, ResourceId, SecretBoxDep, SessionDep, Viewer
from api.errors import error_responses
from api.pagination import CursorQuery, LimitQuery, paginate
from models.schemas.carrier_accounts import CarrierAccountCreate, CarrierAccountOut, CarrierAccountUpdate
from models.schemas.common import Page
from models.tables import CarrierAccount, PhoneNumber

router = APIRouter(
    prefix="/v1/spaces/{space_id}/carrier-accounts", tags=["carrier accounts"], dependencies=[ForgetsCarrierDirectory]
)


@router.post("", status_code=status.HTTP_201_CREATED, responses=error_responses(409))
async def create_carrier_account(
    body: CarrierAccountCreate, ctx: Admin, session: SessionDep, box: SecretBoxDep
) -> CarrierAccountOut:
    duplicate = await session.scalar(
        select(CarrierAccount.id).where(
            CarrierAccount.space_id == ctx.space_id,
            CarrierAccount.provider == body.provider,
            CarrierAccount.account_sid == body.account_sid,
        )
    )
    if duplicate:
        raise HTTPException(status.HTTP_409_CONFLICT, f"this account is already connected as {duplicate}")
    account = CarrierAccount(
        space_id=ctx.space_id,
        name=body.name,
        provider=body.provider,
        account_sid=body.account_sid,
        secret_encrypted=box.encrypt(body.auth_token.get_secret_value()),
        cps=body.cps,
    )
    session.add(account)
    await session.commit()
    return CarrierAccountOut.model_validate(account)


@router.get("")
async def list_carrier_accounts(
    ctx: Viewer, session: SessionDep, limit: int = LimitQuery, cursor: str | None = CursorQuery
) -> Page[CarrierAccountOut]:
    stmt = select(CarrierAccount).where(CarrierAccount.space_id == ctx.space_id)
    rows, next_cursor = await paginate(session, stmt, CarrierAccount, limit, cursor)
    return Page(data=[CarrierAccountOut.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/{account_id}")
async def get_carrier_account(account_id: ResourceId, ctx: Viewer, session: SessionDep) -> CarrierAccountOut:
    account = await get_in_space(session, CarrierAccount, ctx.space_id, account_id, "carrier account")
    return CarrierAccountOut.model_validate(account)


@router.patch("/{account_id}")
async def update_carrier_account(
    account_id: ResourceId, body: CarrierAccountUpdate, ctx: Admin, session: SessionDep, box: SecretBoxDep
) -> CarrierAccountOut:
    account = await get_in_space(session, CarrierAccount, ctx.space_id, account_id, "carrier account")
    if body.name is not None:
        account.name = body.name
    if body.auth_token is not None:
        account.secret_encrypted = box.encrypt(body.auth_token.get_secret_value())
    if "cps" in body.model_fields_set:
        account.cps = body.cps
    await session.commit()
    return CarrierAccountOut.model_validate(account)


@router.delete("/{account_id}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(409))
async def delete_carrier_account(account_id: ResourceId, ctx: Admin, session: SessionDep) -> None:
    account = await get_in_space(session, CarrierAccount, ctx.space_id, account_id, "carrier account")
    await ensure_unused(session, PhoneNumber.carrier_account_id, account.id, "carrier account")
    await session.delete(account)
    await session.commit()
