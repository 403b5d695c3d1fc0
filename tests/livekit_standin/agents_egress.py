"""``livekit.AgentDispatchService`` (room admin grant for the request's room) and ``livekit.Egress``
(``roomRecord`` grant), after livekit-server ``agent_dispatch_service.go`` and ``egress.go``."""

from __future__ import annotations

from google.protobuf.message import Message
from livekit.protocol.agent_dispatch import (
    AgentDispatch,
    CreateAgentDispatchRequest,
    DeleteAgentDispatchRequest,
    ListAgentDispatchRequest,
    ListAgentDispatchResponse,
)
from livekit.protocol.egress import (
    EgressInfo,
    EgressSourceType,
    EgressStatus,
    ListEgressRequest,
    ListEgressResponse,
    ParticipantEgressRequest,
    RoomCompositeEgressRequest,
    StopEgressRequest,
    TrackCompositeEgressRequest,
    TrackEgressRequest,
    WebEgressRequest,
)

from . import ids
from .auth import CallContext
from .errors import TwirpError
from .registry import handles
from .room_service import ROOM_NOT_FOUND
from .state import now_ns

DISPATCH = "livekit.AgentDispatchService"
EGRESS = "livekit.Egress"


# ----------------------------------------------------------- agent dispatch
@handles(DISPATCH, "CreateDispatch")
async def create_dispatch(ctx: CallContext, req: CreateAgentDispatchRequest) -> AgentDispatch:
    ctx.require_room_admin(req.room)
    entry, _ = ctx.lk.state.ensure_room(req.room)  # rooms are auto-created, as with the default config
    dispatch = AgentDispatch(
        id=ids.new_id(ids.AGENT_DISPATCH),
        agent_name=req.agent_name,
        room=req.room,
        metadata=req.metadata,
        restart_policy=req.restart_policy,
        deployment=req.deployment,
        attributes=req.attributes,
    )
    dispatch.state.created_at = now_ns()
    entry.dispatches[dispatch.id] = dispatch
    return dispatch


@handles(DISPATCH, "DeleteDispatch")
async def delete_dispatch(ctx: CallContext, req: DeleteAgentDispatchRequest) -> AgentDispatch:
    ctx.require_room_admin(req.room)
    entry = ctx.lk.state.rooms.get(req.room)
    dispatch = entry.dispatches.pop(req.dispatch_id, None) if entry else None
    if dispatch is None:
        raise TwirpError("not_found", "dispatch not found")
    dispatch.state.deleted_at = now_ns()
    return dispatch


@handles(DISPATCH, "ListDispatch")
async def list_dispatch(ctx: CallContext, req: ListAgentDispatchRequest) -> ListAgentDispatchResponse:
    ctx.require_room_admin(req.room)
    entry = ctx.lk.state.rooms.get(req.room)
    found = [d for d in (entry.dispatches.values() if entry else []) if not req.dispatch_id or d.id == req.dispatch_id]
    return ListAgentDispatchResponse(agent_dispatches=found)


# ------------------------------------------------------------------- egress
def _start_egress(ctx: CallContext, room_name: str, field: str, req: Message, source: int) -> EgressInfo:
    ctx.require_room_record()
    state = ctx.lk.state
    info = EgressInfo(
        egress_id=ids.new_id(ids.EGRESS),
        room_name=room_name,
        source_type=source,  # type: ignore[arg-type]
        status=EgressStatus.EGRESS_STARTING,
        updated_at=now_ns(),
    )
    if room_name:
        if room_name not in state.rooms:
            raise TwirpError("not_found", ROOM_NOT_FOUND)
        info.room_id = state.rooms[room_name].room.sid
    getattr(info, field).CopyFrom(req)
    state.egresses[info.egress_id] = info
    state.emit("egress_started", egress_info=info)
    answer = EgressInfo()
    answer.CopyFrom(info)  # the API answers while the egress is still starting
    info.status = EgressStatus.EGRESS_ACTIVE
    info.started_at = info.updated_at = now_ns()
    state.emit("egress_updated", egress_info=info)
    return answer


WEB_SOURCE = EgressSourceType.EGRESS_SOURCE_TYPE_WEB
SDK_SOURCE = EgressSourceType.EGRESS_SOURCE_TYPE_SDK


@handles(EGRESS, "StartRoomCompositeEgress")
async def start_room_composite(ctx: CallContext, req: RoomCompositeEgressRequest) -> EgressInfo:
    return _start_egress(ctx, req.room_name, "room_composite", req, WEB_SOURCE)


@handles(EGRESS, "StartWebEgress")
async def start_web(ctx: CallContext, req: WebEgressRequest) -> EgressInfo:
    return _start_egress(ctx, "", "web", req, WEB_SOURCE)


@handles(EGRESS, "StartParticipantEgress")
async def start_participant(ctx: CallContext, req: ParticipantEgressRequest) -> EgressInfo:
    return _start_egress(ctx, req.room_name, "participant", req, SDK_SOURCE)


@handles(EGRESS, "StartTrackCompositeEgress")
async def start_track_composite(ctx: CallContext, req: TrackCompositeEgressRequest) -> EgressInfo:
    return _start_egress(ctx, req.room_name, "track_composite", req, SDK_SOURCE)


@handles(EGRESS, "StartTrackEgress")
async def start_track(ctx: CallContext, req: TrackEgressRequest) -> EgressInfo:
    return _start_egress(ctx, req.room_name, "track", req, SDK_SOURCE)


@handles(EGRESS, "ListEgress")
async def list_egress(ctx: CallContext, req: ListEgressRequest) -> ListEgressResponse:
    ctx.require_room_record()
    live = (EgressStatus.EGRESS_STARTING, EgressStatus.EGRESS_ACTIVE)
    items = [
        e
        for e in ctx.lk.state.egresses.values()
        if (not req.room_name or e.room_name == req.room_name)
        and (not req.egress_id or e.egress_id == req.egress_id)
        and (not req.active or e.status in live)
    ]
    return ListEgressResponse(items=items)


@handles(EGRESS, "StopEgress")
async def stop_egress(ctx: CallContext, req: StopEgressRequest) -> EgressInfo:
    ctx.require_room_record()
    state = ctx.lk.state
    info = state.egresses.get(req.egress_id)
    if info is None:
        raise TwirpError("not_found", "egress does not exist")
    if info.status not in (EgressStatus.EGRESS_STARTING, EgressStatus.EGRESS_ACTIVE):
        msg = f"egress with status {EgressStatus.Name(info.status)} cannot be stopped"
        raise TwirpError("failed_precondition", msg)
    answer = EgressInfo()
    answer.CopyFrom(info)
    answer.status = EgressStatus.EGRESS_ENDING
    answer.updated_at = now_ns()
    ended = state.end_egress(req.egress_id)
    if ctx.lk.before_stop_egress_answers is not None:
        await ctx.lk.before_stop_egress_answers(ended)
    return answer
