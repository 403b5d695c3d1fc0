"""Outbound campaigns of a space: create from JSON or a CSV upload (unusable rows reported by line, never dropped
silently), status with live progress, pause / resume / cancel, limits, more contacts, per-contact results (JSON
or CSV). The campaign's workflow is reached only through ``workflows.campaign_client``."""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated, TypeVar

from fastapi import APIRouter, File, Form, HTTPException, Query, UploadFile, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import not_found
from api.campaign_store import (
    CampaignSpecError,
    add_contacts,
    check_agent,
    check_message_asset,
    create_campaign,
    from_numbers,
    start_input,
)
from api.deps import Operator, ResourceId, SessionDep, SpaceContext, TemporalDep, Viewer
from api.errors import error_responses
from api.pagination import CursorQuery, LimitQuery, paginate
from models import campaigns as m
from models.campaign_contacts import ContactIn, RowProblem, check_contact, parse_csv
from models.enums import ContactOutcome
from models.schemas.campaigns import (
    CampaignCreate,
    CampaignCreated,
    CampaignOut,
    CampaignSettings,
    CancelIn,
    ContactCreate,
    ContactOut,
    ContactsAdd,
    ContactsAdded,
    LimitsIn,
    ProgressOut,
    RowProblemOut,
)
from models.schemas.common import Page
from models.tables import Campaign, CampaignContact
from workflows.campaign_client import CampaignActionRefused, CampaignClient, CampaignNotFound, CampaignRef

router = APIRouter(prefix="/v1/spaces/{space_id}/campaigns", tags=["campaigns"])
T = TypeVar("T")
MAX_CSV_BYTES = 20 * 1024 * 1024
EXPORT_COLUMNS = ("line", "phone", "name", "time_zone", "outcome", "attempts", "last_result", "answered_by",
                  "last_call_id", "finished_at")  # fmt: skip


def _invalid(field: str, reason: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ("body", field), "msg": reason}])


async def _campaigns(temporal: TemporalDep) -> CampaignClient:
    return await temporal.campaigns()


def _checked_json(contacts: list[ContactCreate], default_zone: str) -> tuple[list[ContactIn], list[RowProblem]]:
    good: list[ContactIn] = []
    bad: list[RowProblem] = []
    seen: dict[str, int] = {}
    for index, c in enumerate(contacts, start=1):
        checked = check_contact(
            c.phone, c.name, c.time_zone, c.variables, line=index, default_zone=default_zone, seen=seen
        )
        if isinstance(checked, ContactIn):
            good.append(checked)
        else:
            bad.append(checked)
    return good, bad


def _out(row: Campaign, progress: m.CampaignProgress | None = None) -> CampaignOut:
    out = CampaignOut.model_validate(row)
    if progress is not None:
        out.progress = ProgressOut.model_validate(progress)
        out.status = progress.status
    return out


def _problems(problems: list[RowProblem]) -> list[RowProblemOut]:
    return [RowProblemOut.model_validate(p) for p in problems]


async def _create(
    settings: CampaignSettings,
    contacts: list[ContactIn],
    problems: list[RowProblem],
    ctx: SpaceContext,
    session: AsyncSession,
    temporal: TemporalDep,
) -> CampaignCreated:
    if not contacts:
        raise _invalid("contacts", f"no usable contact ({len(problems)} rejected): {_first(problems)}")
    try:
        numbers = await from_numbers(session, ctx.space_id, list(settings.from_numbers))
        agent_id = await check_agent(session, ctx.space_id, settings.agent_id, numbers)
        await check_message_asset(session, ctx.space_id, settings.amd.message_asset_id if settings.amd else None)
    except CampaignSpecError as exc:
        raise _invalid(exc.field, exc.reason) from exc
    row = await create_campaign(
        session,
        space_id=ctx.space_id,
        name=settings.name,
        agent_id=agent_id,
        numbers=numbers,
        limits=settings.limits.to_limits(),
        amd=settings.amd.to_options() if settings.amd else None,
        contacts=contacts,
    )
    ref = await (await _campaigns(temporal)).start(start_input(row))
    return CampaignCreated(campaign=_out(row, await _live(ref)), accepted=len(contacts), rejected=_problems(problems))


def _first(problems: list[RowProblem]) -> str:
    return f"line {problems[0].line}: {problems[0].reason}" if problems else "the list is empty"


async def _live(ref: CampaignRef) -> m.CampaignProgress | None:
    try:
        return await ref.progress()
    except CampaignNotFound:
        return None


async def _row(session: AsyncSession, space_id: str, campaign_id: str) -> Campaign:
    row = await session.get(Campaign, campaign_id)
    if row is None or row.space_id != space_id:
        raise not_found("campaign")
    return row


async def _act(action: Callable[[], Awaitable[T]]) -> T:
    try:
        return await action()
    except CampaignActionRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, exc.reason) from exc


@router.post("", status_code=status.HTTP_201_CREATED, responses=error_responses(503))
async def create(body: CampaignCreate, ctx: Operator, session: SessionDep, temporal: TemporalDep) -> CampaignCreated:
    """Start a campaign with the contacts in the body; unusable contacts are listed in ``rejected`` (by position)."""
    contacts, problems = _checked_json(body.contacts, body.limits.default_time_zone)
    return await _create(body, contacts, problems, ctx, session, temporal)


@router.post("/upload", status_code=status.HTTP_201_CREATED, responses=error_responses(413, 503))
async def upload(
    ctx: Operator,
    session: SessionDep,
    temporal: TemporalDep,
    file: Annotated[UploadFile, File(description="CSV: phone, name, time_zone, any other column is a variable")],
    settings: Annotated[str, Form(description="JSON: name, from_numbers, agent_id, limits, amd")],
) -> CampaignCreated:
    """Start a campaign from a CSV upload; rows it cannot use are in ``rejected`` with their line numbers."""
    try:
        parsed = CampaignSettings.model_validate_json(settings)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", "settings", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from exc
    data = await file.read(MAX_CSV_BYTES + 1)
    if len(data) > MAX_CSV_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"the CSV is over {MAX_CSV_BYTES} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _invalid("file", "the CSV is not UTF-8 text") from exc
    contacts, problems = parse_csv(text, parsed.limits.default_time_zone)
    return await _create(parsed, contacts, problems, ctx, session, temporal)


@router.get("")
async def list_campaigns(
    ctx: Viewer, session: SessionDep, limit: int = LimitQuery, cursor: str | None = CursorQuery
) -> Page[CampaignOut]:
    stmt = select(Campaign).where(Campaign.space_id == ctx.space_id)
    rows, next_cursor = await paginate(session, stmt, Campaign, limit, cursor)
    return Page(data=[_out(r) for r in rows], next_cursor=next_cursor)


@router.get("/{campaign_id}", responses=error_responses(503))
async def get_campaign(campaign_id: ResourceId, ctx: Viewer, session: SessionDep, temporal: TemporalDep) -> CampaignOut:
    """The campaign with its live progress (from its workflow, while Temporal keeps it)."""
    row = await _row(session, ctx.space_id, campaign_id)
    return _out(row, await _live((await _campaigns(temporal)).campaign(ctx.space_id, campaign_id)))


@router.post("/{campaign_id}/pause", responses=error_responses(409, 503))
async def pause(campaign_id: ResourceId, ctx: Operator, session: SessionDep, temporal: TemporalDep) -> ProgressOut:
    """No new dials; calls in progress go on. 409 with the reason when the campaign is not running."""
    await _row(session, ctx.space_id, campaign_id)
    ref = (await _campaigns(temporal)).campaign(ctx.space_id, campaign_id)
    return ProgressOut.model_validate(await _act(lambda: ref.pause(m.PauseRequest(by=_by(ctx)))))


@router.post("/{campaign_id}/resume", responses=error_responses(409, 503))
async def resume(campaign_id: ResourceId, ctx: Operator, session: SessionDep, temporal: TemporalDep) -> ProgressOut:
    await _row(session, ctx.space_id, campaign_id)
    ref = (await _campaigns(temporal)).campaign(ctx.space_id, campaign_id)
    return ProgressOut.model_validate(await _act(lambda: ref.resume(m.ResumeRequest(by=_by(ctx)))))


@router.post("/{campaign_id}/cancel", responses=error_responses(409, 503))
async def cancel(
    campaign_id: ResourceId, ctx: Operator, session: SessionDep, temporal: TemporalDep, body: CancelIn | None = None
) -> ProgressOut:
    """No new dials; calls in progress finish, or are hung up with ``hang_up``; open contacts end cancelled."""
    await _row(session, ctx.space_id, campaign_id)
    ref = (await _campaigns(temporal)).campaign(ctx.space_id, campaign_id)
    request = m.CancelRequest(hang_up=(body or CancelIn()).hang_up, by=_by(ctx))
    return ProgressOut.model_validate(await _act(lambda: ref.cancel(request)))


@router.put("/{campaign_id}/limits", responses=error_responses(409, 503))
async def update_limits(
    campaign_id: ResourceId, body: LimitsIn, ctx: Operator, session: SessionDep, temporal: TemporalDep
) -> ProgressOut:
    await _row(session, ctx.space_id, campaign_id)
    ref = (await _campaigns(temporal)).campaign(ctx.space_id, campaign_id)
    request = m.LimitsRequest(body.to_limits(), by=_by(ctx))
    return ProgressOut.model_validate(await _act(lambda: ref.update_limits(request)))


@router.post("/{campaign_id}/contacts", responses=error_responses(409, 503))
async def more_contacts(
    campaign_id: ResourceId, body: ContactsAdd, ctx: Operator, session: SessionDep, temporal: TemporalDep
) -> ContactsAdded:
    """Append contacts; numbers the campaign already has, and unusable ones, are in ``rejected``."""
    row = await _row(session, ctx.space_id, campaign_id)
    ref = (await _campaigns(temporal)).campaign(ctx.space_id, campaign_id)
    progress = await _live(ref)
    if progress is None or progress.status.value in ("completed", "cancelled", "cancelling"):
        raise HTTPException(status.HTTP_409_CONFLICT, "the campaign is over")
    contacts, problems = _checked_json(body.contacts, m.limits_of(row.limits).default_time_zone)
    added, duplicates = await add_contacts(session, row, contacts)
    if added:
        await ref.contacts_added(added)
    return ContactsAdded(accepted=added, rejected=_problems(problems + duplicates))


@router.get("/{campaign_id}/contacts")
async def contacts(
    campaign_id: ResourceId,
    ctx: Viewer,
    session: SessionDep,
    outcome: ContactOutcome | None = Query(default=None),
    limit: int = LimitQuery,
    after: int = Query(default=0, ge=0, description="`seq` of the last contact of the previous page"),
) -> Page[ContactOut]:
    """Per-contact results in list order; page with ``after``."""
    await _row(session, ctx.space_id, campaign_id)
    stmt = select(CampaignContact).where(CampaignContact.campaign_id == campaign_id, CampaignContact.seq > after)
    if outcome is not None:
        stmt = stmt.where(CampaignContact.outcome == outcome)
    rows = list(await session.scalars(stmt.order_by(CampaignContact.seq).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(data=[ContactOut.model_validate(r) for r in rows], next_cursor=str(rows[-1].seq) if more else None)


@router.get(
    "/{campaign_id}/contacts.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "One row per contact"}},
)
async def export(campaign_id: ResourceId, ctx: Viewer, session: SessionDep) -> StreamingResponse:
    """Per-contact results as CSV (one row per contact, list order)."""
    await _row(session, ctx.space_id, campaign_id)
    rows = list(
        await session.scalars(
            select(CampaignContact).where(CampaignContact.campaign_id == campaign_id).order_by(CampaignContact.seq)
        )
    )

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(EXPORT_COLUMNS)
        for r in rows:
            writer.writerow(
                [
                    r.line or "",
                    r.e164,
                    r.name or "",
                    r.time_zone,
                    r.outcome.value if r.outcome else "",
                    r.attempts,
                    r.last_result.value if r.last_result else "",
                    r.answered_by or "",
                    r.last_call_id or "",
                    r.finished_at.isoformat() if r.finished_at else "",
                ]
            )
            if buffer.tell() > 64 * 1024:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    filename = f"{campaign_id}-contacts.csv"
    headers = {"content-disposition": f'attachment; filename="{filename}"'}
    return StreamingResponse(lines(), media_type="text/csv", headers=headers)


def _by(ctx: SpaceContext) -> str:
    return f"api-key:{ctx.principal.key_id}"
