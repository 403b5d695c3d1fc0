"""Campaign rows: checking what a campaign names (from-numbers, agent), writing it and its contacts in bulk, and
the ``StartCampaign`` its workflow runs with. The REST routes, the benchmark and the tests share it."""

from __future__ import annotations

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.voicemail_assets import message_asset_problem
from models.calls import AmdOptions
from models.campaign_contacts import ContactIn, RowProblem
from models.campaigns import (
    CampaignLimits,
    FromNumber,
    StartCampaign,
    campaign_workflow_id,
    limits_json,
    limits_of,
)
from models.enums import CampaignStatus, ContactStatus, MachinePolicy, MediaMode
from models.tables import Agent, Campaign, CampaignContact, PhoneNumber, new_id

INSERT_CHUNK = 1000


class CampaignSpecError(ValueError):
    """A campaign that names something it may not use: ``field`` and ``reason`` for a 422."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


async def from_numbers(session: AsyncSession, space_id: str, e164s: list[str]) -> list[FromNumber]:
    found: list[FromNumber] = []
    for e164 in e164s:
        number = await session.scalar(
            select(PhoneNumber).where(PhoneNumber.e164 == e164, PhoneNumber.space_id == space_id)
        )
        if number is None or not number.enabled:
            raise CampaignSpecError("from_numbers", f"{e164} is not an enabled number of this space")
        found.append(FromNumber(number.id, number.e164, number.media_mode))
    return found


async def check_agent(session: AsyncSession, space_id: str, agent_id: str | None, numbers: list[FromNumber]) -> str:
    """The campaign's agent: the one named, else the agent the first from-number routes to."""
    if agent_id is None:
        first = await session.get(PhoneNumber, numbers[0].phone_number_id)
        agent_id = first.agent_id if first is not None else None
        if agent_id is None:
            raise CampaignSpecError("agent_id", "the from-number routes to no agent: name one")
    agent = await session.get(Agent, agent_id)
    if agent is None or agent.space_id != space_id:
        raise CampaignSpecError("agent_id", f"no agent {agent_id!r} in this space")
    return agent_id


async def check_message_asset(session: AsyncSession, space_id: str, asset_id: str | None) -> None:
    """A recorded voicemail message must be a stored WAV asset of this space (``api/voicemail_assets.py``)."""
    if asset_id is not None and (problem := await message_asset_problem(session, space_id, asset_id)) is not None:
        raise CampaignSpecError("amd.message_asset_id", problem)


async def create_campaign(
    session: AsyncSession,
    *,
    space_id: str,
    name: str,
    agent_id: str,
    numbers: list[FromNumber],
    limits: CampaignLimits,
    amd: AmdOptions | None,
    contacts: list[ContactIn],
) -> Campaign:
    """The campaign row and its contacts, committed (the workflow starts after)."""
    campaign_id = new_id("campaigns")
    campaign = Campaign(
        id=campaign_id,
        space_id=space_id,
        name=name,
        status=CampaignStatus.RUNNING,
        workflow_id=campaign_workflow_id(space_id, campaign_id),
        agent_id=agent_id,
        from_numbers=[
            {"phone_number_id": n.phone_number_id, "e164": n.e164, "media_mode": n.media_mode.value} for n in numbers
        ],
        limits=limits_json(limits),
        amd=(
            {"policy": amd.policy.value, "message": amd.message, "message_asset_id": amd.message_asset_id}
            if amd is not None
            else None
        ),
    )
    session.add(campaign)
    await session.flush()
    await insert_contacts(session, campaign, contacts, first_seq=1)
    await session.commit()
    return campaign


async def insert_contacts(session: AsyncSession, campaign: Campaign, contacts: list[ContactIn], first_seq: int) -> None:
    rows = [
        {
            "campaign_id": campaign.id,
            "space_id": campaign.space_id,
            "seq": first_seq + i,
            "line": contact.line,
            "e164": contact.e164,
            "name": contact.name,
            "variables": contact.variables,
            "time_zone": contact.time_zone,
            "status": ContactStatus.PENDING,
            "attempts": 0,
        }
        for i, contact in enumerate(contacts)
    ]
    for start in range(0, len(rows), INSERT_CHUNK):
        await session.execute(insert(CampaignContact), rows[start : start + INSERT_CHUNK])


async def add_contacts(
    session: AsyncSession, campaign: Campaign, contacts: list[ContactIn]
) -> tuple[int, list[RowProblem]]:
    """Append contacts to a campaign; numbers it already has are reported, not added twice."""
    problems: list[RowProblem] = []
    fresh: list[ContactIn] = []
    numbers = [c.e164 for c in contacts]
    existing: set[str] = set()
    for start in range(0, len(numbers), INSERT_CHUNK):
        chunk = numbers[start : start + INSERT_CHUNK]
        existing |= set(
            await session.scalars(
                select(CampaignContact.e164).where(
                    CampaignContact.campaign_id == campaign.id, CampaignContact.e164.in_(chunk)
                )
            )
        )
    for contact in contacts:
        if contact.e164 in existing:
            problems.append(RowProblem(contact.line or 0, "already in the campaign: the number is called once"))
        else:
            fresh.append(contact)
    last = await session.scalar(select(func.max(CampaignContact.seq)).where(CampaignContact.campaign_id == campaign.id))
    await insert_contacts(session, campaign, fresh, first_seq=(last or 0) + 1)
    await session.commit()
    return len(fresh), problems


def start_input(campaign: Campaign, *, continue_after_dials: int = 500) -> StartCampaign:
    amd = None
    if campaign.amd:
        amd = AmdOptions(
            MachinePolicy(campaign.amd["policy"]), campaign.amd.get("message"), campaign.amd.get("message_asset_id")
        )
    numbers = [FromNumber(n["phone_number_id"], n["e164"], MediaMode(n["media_mode"])) for n in campaign.from_numbers]
    return StartCampaign(
        campaign_id=campaign.id,
        space_id=campaign.space_id,
        from_numbers=numbers,
        limits=limits_of(campaign.limits),
        agent_id=campaign.agent_id,
        flow_id=campaign.flow_id,
        amd=amd,
        continue_after_dials=continue_after_dials,
    )
