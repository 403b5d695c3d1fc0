from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from sqlalchemy import select

from api.crud import UNCHANGED_SECRET, apply, encrypt_or_keep, ensure_unused, get_in_space, revalidate
from api.deps import Admin, ResourceId, SecretBoxDep, SessionDep, Viewer
from api.errors import error_responses
from api.pagination import CursorQuery, LimitQuery, paginate
from models.schemas.agents import AgentCreate, AgentFields, AgentOut, AgentUpdate
from models.schemas.common import Page
from models.secret_box import SecretBox
from models.tables import Agent, PhoneNumber

router = APIRouter(prefix="/v1/spaces/{space_id}/agents", tags=["agents"])


def _out(agent: Agent) -> AgentOut:
    return AgentOut.model_validate(
        {
            **{c: getattr(agent, c) for c in AgentOut.model_fields if hasattr(agent, c)},
            "has_llm_api_key": agent.llm_api_key_encrypted is not None,
        }
    )


def _columns(fields: AgentFields, box: SecretBox, keep_key: str | None) -> dict[str, Any]:
    values = fields.model_dump(exclude={"llm_api_key", "llm_base_url"}, mode="json")
    values["llm_base_url"] = str(fields.llm_base_url) if fields.llm_base_url else None
    values["llm_api_key_encrypted"] = encrypt_or_keep(box, fields.llm_api_key, keep_key)
    return values


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_agent(body: AgentCreate, ctx: Admin, session: SessionDep, box: SecretBoxDep) -> AgentOut:
    agent = Agent(space_id=ctx.space_id, **_columns(body, box, None))
    session.add(agent)
    await session.commit()
    return _out(agent)


@router.get("")
async def list_agents(
    ctx: Viewer, session: SessionDep, limit: int = LimitQuery, cursor: str | None = CursorQuery
) -> Page[AgentOut]:
    rows, next_cursor = await paginate(
        session, select(Agent).where(Agent.space_id == ctx.space_id), Agent, limit, cursor
    )
    return Page(data=[_out(r) for r in rows], next_cursor=next_cursor)


@router.get("/{agent_id}")
async def get_agent(agent_id: ResourceId, ctx: Viewer, session: SessionDep) -> AgentOut:
    return _out(await get_in_space(session, Agent, ctx.space_id, agent_id, "agent"))


@router.patch("/{agent_id}")
async def update_agent(
    agent_id: ResourceId, body: AgentUpdate, ctx: Admin, session: SessionDep, box: SecretBoxDep
) -> AgentOut:
    agent = await get_in_space(session, Agent, ctx.space_id, agent_id, "agent")
    current = _out(agent).model_dump(include=set(AgentFields.model_fields), mode="json")
    if agent.llm_api_key_encrypted:
        current["llm_api_key"] = UNCHANGED_SECRET
    patch = body.model_dump(exclude_unset=True, mode="json")
    if "llm_api_key" in patch and body.llm_api_key is not None:
        patch["llm_api_key"] = body.llm_api_key.get_secret_value()
    merged = revalidate(AgentFields, {**current, **patch})
    apply(agent, _columns(merged, box, agent.llm_api_key_encrypted))
    await session.commit()
    return _out(agent)


@router.delete("/{agent_id}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(409))
async def delete_agent(agent_id: ResourceId, ctx: Admin, session: SessionDep) -> None:
    agent = await get_in_space(session, Agent, ctx.space_id, agent_id, "agent")
    await ensure_unused(session, PhoneNumber.agent_id, agent.id, "agent")
    await session.delete(agent)
    await session.commit()
