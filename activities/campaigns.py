"""Campaign activities on the database: claiming contacts to dial, the check right before each dial (opt-outs and
the space's do-not-call list), recording each attempt and final outcome, the campaign's status; and hanging up
a cancelled campaign's calls through the typed call client.

Idempotency: a claim is keyed by its batch number (a retried claim returns the rows it already claimed), and
every write sets values the workflow decided (a retry writes the same row again), so replays change nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from models.calls import HangupRequest
from models.campaigns import (
    AttemptAllowed,
    AttemptBegin,
    AttemptRecorded,
    AttemptsAllowed,
    AttemptsRecorded,
    BeginAttemptInput,
    BeginAttemptsInput,
    CallsHungUp,
    CampaignStatusSet,
    ClaimContactsInput,
    ClaimedContacts,
    ContactRef,
    ContactsFinished,
    FinishContactsInput,
    HangUpCallsInput,
    RecordAttemptInput,
    RecordAttemptsInput,
    SetCampaignStatusInput,
    limits_json,
)
from models.dial_pacing import ROUTE_CARRIER_ACCOUNT, ROUTE_SIP_TRUNK, dial_route
from models.enums import CampaignStatus, ContactStatus, MediaMode
from models.tables import Campaign, CampaignContact, CarrierAccount, DoNotCall, PhoneNumber, SipTrunk, SmsOptOut
from workflows.call_client import CallActionError, CallClient

log = logging.getLogger(__name__)
C = CampaignContact
OPEN = (ContactStatus.PENDING, ContactStatus.WAITING)
FINISHED_CAMPAIGN = (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED)


class CampaignActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], calls: CallClient | None = None) -> None:
        self._sessions = sessions
        self._calls = calls

    @activity.defn
    async def claim_contacts(self, request: ClaimContactsInput) -> ClaimedContacts:
        """Up to ``limit`` contacts ready to dial (due retries first, then never dialled ones, in list order)."""
        async with self._sessions() as session:
            await _write_records(session, request.records)
            mine = C.campaign_id == request.campaign_id
            claimed = list(await session.scalars(select(C).where(mine, C.claim == request.batch).order_by(C.seq)))
            if not claimed:
                due = or_(C.next_attempt_at.is_(None), C.next_attempt_at <= request.now)
                ready = (
                    select(C.id)
                    .where(mine, C.claim.is_(None), C.status.in_(OPEN), due)
                    .order_by(C.status.desc(), C.seq)  # "waiting" (retries) before "pending"
                    .limit(request.limit)
                )
                ids = list(await session.scalars(ready))
                if ids:
                    await session.execute(update(C).where(C.id.in_(ids)).values(claim=request.batch))
                    await session.commit()
                    claimed = list(await session.scalars(select(C).where(C.id.in_(ids)).order_by(C.seq)))
            total = await session.scalar(select(func.count()).where(mine)) or 0
            open_count = await session.scalar(select(func.count()).where(mine, C.status != ContactStatus.DONE)) or 0
            later = await session.scalar(
                select(func.min(C.next_attempt_at)).where(
                    mine, C.claim.is_(None), C.status == ContactStatus.WAITING, C.next_attempt_at > request.now
                )
            )
        contacts = [ContactRef(c.seq, c.e164, c.time_zone, c.attempts) for c in claimed]
        return ClaimedContacts(contacts, total, open_count, later)

    @activity.defn
    async def begin_attempt(self, request: BeginAttemptInput) -> AttemptAllowed:
        """Right before a dial: may this contact be called (opt-out, do-not-call)? If so, mark it dialling."""
        attempt = AttemptBegin(request.seq, request.attempt, request.call_id, request.from_phone_number_id)
        async with self._sessions() as session:
            await _write_records(session, request.records)
            allowed = await _begin(session, request.campaign_id, request.space_id, attempt)
            await session.commit()
        return allowed

    @activity.defn
    async def begin_attempts(self, request: BeginAttemptsInput) -> AttemptsAllowed:
        """The next few dials' checks together, each as ``begin_attempt`` (one transaction)."""
        async with self._sessions() as session:
            await _write_records(session, request.records)
            allowed = [await _begin(session, request.campaign_id, request.space_id, a) for a in request.attempts]
            await session.commit()
        return AttemptsAllowed(allowed)

    @activity.defn
    async def record_attempt(self, request: RecordAttemptInput) -> AttemptRecorded:
        """The result of an attempt (or of a decision not to dial): final outcome, or the next attempt's time."""
        async with self._sessions() as session:
            await _write_records(session, [request])
        return AttemptRecorded(request.seq)

    @activity.defn
    async def record_attempts(self, request: RecordAttemptsInput) -> AttemptsRecorded:
        """Results kept by the workflow, written together (also piggybacked on claims and dial checks)."""
        async with self._sessions() as session:
            await _write_records(session, request.records)
        return AttemptsRecorded(len(request.records))

    @activity.defn
    async def finish_contacts(self, request: FinishContactsInput) -> ContactsFinished:
        """Every contact without an outcome gets ``outcome`` (a cancelled campaign, or one whose end has come)."""
        async with self._sessions() as session:
            result = await session.execute(
                update(C)
                .where(C.campaign_id == request.campaign_id, C.status != ContactStatus.DONE)
                .values(status=ContactStatus.DONE, outcome=request.outcome, finished_at=request.at, claim=None)
            )
            await session.commit()
        return ContactsFinished(int(getattr(result, "rowcount", 0) or 0))

    @activity.defn
    async def set_campaign_status(self, request: SetCampaignStatusInput) -> CampaignStatusSet:
        async with self._sessions() as session:
            campaign = await session.get(Campaign, request.campaign_id)
            if campaign is not None:
                campaign.status = request.status
                if request.status in FINISHED_CAMPAIGN:
                    campaign.finished_at = campaign.finished_at or request.at
                if request.limits is not None:
                    campaign.limits = limits_json(request.limits)
                await session.commit()
        return CampaignStatusSet(request.campaign_id)

    @activity.defn
    async def hang_up_calls(self, request: HangUpCallsInput) -> CallsHungUp:
        """Hang up a cancelled campaign's calls in progress (operator asked for it), through the call client."""
        assert self._calls is not None, "the worker gives campaign activities a call client"
        done = 0
        for workflow_id in request.workflow_ids:
            try:
                await self._calls.call(workflow_id, space_id=request.space_id).hangup(
                    HangupRequest(by="campaign-cancel")
                )
                done += 1
            except CallActionError:
                pass  # it ended meanwhile
        return CallsHungUp(done)


async def _begin(session: AsyncSession, campaign_id: str, space_id: str, request: AttemptBegin) -> AttemptAllowed:
    """May this contact be called now (do-not-call list, SMS opt-out from the number)? If so, mark it dialling (a
    check made again for the same call is made in full again: the lists may have changed meanwhile)."""
    contact = await session.scalar(select(C).where(C.campaign_id == campaign_id, C.seq == request.seq))
    if contact is None:
        return AttemptAllowed(allowed=False)
    route, cps = await _route(session, request.from_phone_number_id)
    blocked = await session.scalar(
        select(func.count()).where(DoNotCall.space_id == space_id, DoNotCall.e164 == contact.e164)
    )
    opted_out = await session.scalar(
        select(func.count())
        .select_from(SmsOptOut)
        .join(PhoneNumber, PhoneNumber.id == SmsOptOut.phone_number_id)
        .where(
            SmsOptOut.space_id == space_id,
            SmsOptOut.party == contact.e164,
            PhoneNumber.id == request.from_phone_number_id,
        )
    )
    if blocked or opted_out:
        log.info("campaign contact not dialled: opted out", extra={"campaign_id": campaign_id})
        return AttemptAllowed(allowed=False)
    contact.status = ContactStatus.DIALING
    contact.attempts = request.attempt
    contact.last_call_id = request.call_id
    return AttemptAllowed(True, contact.name, dict(contact.variables or {}), route, cps)


async def _write_records(session: AsyncSession, records: list[RecordAttemptInput]) -> None:
    """Each result on its contact row (every value decided by the workflow: a retry writes the same), committed."""
    if not records:
        return
    for request in records:
        contact = await session.scalar(select(C).where(C.campaign_id == request.campaign_id, C.seq == request.seq))
        if contact is None:
            continue
        contact.claim = None
        contact.attempts = max(contact.attempts, request.attempt)
        if request.call_id is not None:
            contact.last_call_id = request.call_id
        if request.result is not None:
            contact.last_result = request.result
        if request.answered_by is not None:
            contact.answered_by = request.answered_by
        if request.outcome is not None:
            contact.status, contact.outcome = ContactStatus.DONE, request.outcome
            contact.next_attempt_at, contact.finished_at = None, request.at
        else:
            contact.status, contact.next_attempt_at = ContactStatus.WAITING, request.next_attempt_at
    await session.commit()


async def _route(session: AsyncSession, phone_number_id: str) -> tuple[str | None, float | None]:
    """What a dial from this number goes out through (media streams: the carrier account's REST API; LiveKit: the
    SIP trunk), and that route's calls-per-second limit now."""
    number = await session.get(PhoneNumber, phone_number_id)
    if number is None:
        return None, None
    if number.media_mode is MediaMode.LIVEKIT and number.sip_trunk_id is not None:
        cps = await session.scalar(select(SipTrunk.cps).where(SipTrunk.id == number.sip_trunk_id))
        return dial_route(ROUTE_SIP_TRUNK, number.sip_trunk_id), cps
    if number.carrier_account_id is not None:
        cps = await session.scalar(select(CarrierAccount.cps).where(CarrierAccount.id == number.carrier_account_id))
        return dial_route(ROUTE_CARRIER_ACCOUNT, number.carrier_account_id), cps
    return None, None


def campaign_activities(campaigns: CampaignActivities) -> list[Callable[..., Any]]:
    """What a worker registers for campaigns."""
    return [
        campaigns.claim_contacts,
        campaigns.begin_attempt,
        campaigns.begin_attempts,
        campaigns.record_attempt,
        campaigns.record_attempts,
        campaigns.finish_contacts,
        campaigns.set_campaign_status,
        campaigns.hang_up_calls,
    ]
