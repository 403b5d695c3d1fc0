"""Routing of a console (web) call that names an agent or a flow and no number: its space answers it, with the
space's call timers. A console call to a number goes through the number's ordinary route instead."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from models.calls import CallRoute, RouteCallInput
from models.enums import MediaMode, RouteType
from models.schemas.spaces import CallSettings
from models.tables import Agent, Flow, Space


def is_numberless_web_call(request: RouteCallInput) -> bool:
    named = bool(request.agent_id or request.flow_id)
    return request.media_mode is MediaMode.WEB and not request.phone_number_id and named


async def route_web_call(session: AsyncSession, request: RouteCallInput) -> CallRoute:
    if request.agent_id:
        agent = await session.get(Agent, request.agent_id)
        if agent is None or (request.space_id and agent.space_id != request.space_id):
            return CallRoute(accepted=False, reason="no such agent in this space", space_id=request.space_id)
        space_id, route_type = agent.space_id, RouteType.AGENT
    else:
        flow = await session.get(Flow, request.flow_id)
        if flow is None or (request.space_id and flow.space_id != request.space_id):
            return CallRoute(accepted=False, reason="no such flow in this space", space_id=request.space_id)
        space_id, route_type = flow.space_id, RouteType.FLOW
    space = await session.get(Space, space_id)
    if space is None:
        return CallRoute(accepted=False, reason="space not found", space_id=space_id)
    settings = CallSettings.model_validate(space.call_settings or {})
    return CallRoute(
        accepted=True,
        space_id=space_id,
        route_type=route_type,
        agent_id=request.agent_id,
        flow_id=None if request.agent_id else request.flow_id,
        media_mode=MediaMode.WEB,
        ringing_timeout_seconds=settings.ringing_timeout_seconds,
        max_call_duration_seconds=settings.max_call_duration_seconds,
        hold_timeout_seconds=settings.hold_timeout_seconds,
    )
