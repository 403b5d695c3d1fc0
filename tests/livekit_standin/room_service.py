"""``livekit.RoomService`` (livekit-server ``pkg/service/roomservice.go``)."""

from __future__ import annotations

from collections.abc import Iterable

from livekit.protocol.agent_dispatch import AgentDispatch, RoomAgentDispatch
from livekit.protocol.models import DisconnectReason, ParticipantInfo, Room, RoomEndReason
from livekit.protocol.room import (
    CreateRoomRequest,
    DeleteRoomRequest,
    DeleteRoomResponse,
    ListParticipantsRequest,
    ListParticipantsResponse,
    ListRoomsRequest,
    ListRoomsResponse,
    MuteRoomTrackRequest,
    MuteRoomTrackResponse,
    RemoveParticipantResponse,
    RoomParticipantIdentity,
    SendDataRequest,
    SendDataResponse,
    UpdateParticipantRequest,
    UpdateRoomMetadataRequest,
    UpdateSubscriptionsRequest,
    UpdateSubscriptionsResponse,
)

from . import ids
from .auth import CallContext
from .errors import TwirpError
from .registry import handles
from .state import State, now_ns

SVC = "livekit.RoomService"

ROOM_NOT_FOUND = "requested room does not exist"
PARTICIPANT_NOT_FOUND = "participant does not exist"


def _participant(state: State, room: str, identity: str) -> ParticipantInfo:
    found = state.participant(room, identity)
    if found is None:
        raise TwirpError("not_found", PARTICIPANT_NOT_FOUND)
    return found


def add_room_agents(state: State, room: str, agents: Iterable[RoomAgentDispatch]) -> None:
    """Dispatches requested by ``CreateRoomRequest.agents`` or a dispatch rule's room configuration."""
    entry = state.rooms[room]
    for agent in agents:
        dispatch = AgentDispatch(
            id=ids.new_id(ids.AGENT_DISPATCH), agent_name=agent.agent_name, room=room, metadata=agent.metadata
        )
        dispatch.state.created_at = now_ns()
        entry.dispatches[dispatch.id] = dispatch


@handles(SVC, "CreateRoom")
async def create_room(ctx: CallContext, req: CreateRoomRequest) -> Room:
    ctx.require_room_create()
    if not req.name:
        raise TwirpError("invalid_argument", "no room name")
    state = ctx.lk.state
    _, created = state.ensure_room(
        req.name,
        empty_timeout=req.empty_timeout,
        departure_timeout=req.departure_timeout,
        max_participants=req.max_participants,
        metadata=req.metadata,
    )
    if created:
        add_room_agents(state, req.name, req.agents)
    return state.room_info(req.name)


@handles(SVC, "ListRooms")
async def list_rooms(ctx: CallContext, req: ListRoomsRequest) -> ListRoomsResponse:
    ctx.require_room_list()
    state = ctx.lk.state
    names = [n for n in state.rooms if not req.names or n in req.names]
    return ListRoomsResponse(rooms=[state.room_info(n) for n in names])


@handles(SVC, "DeleteRoom")
async def delete_room(ctx: CallContext, req: DeleteRoomRequest) -> DeleteRoomResponse:
    ctx.require_room_create()
    closed = ctx.lk.state.close_room(
        req.room,
        end_reason=RoomEndReason.ROOM_END_API_DELETE,
        disconnect_reason=DisconnectReason.ROOM_DELETED,
    )
    if not closed:
        raise TwirpError("not_found", ROOM_NOT_FOUND)
    if ctx.lk.before_delete_room_answers is not None:
        await ctx.lk.before_delete_room_answers(req.room)
    return DeleteRoomResponse()


@handles(SVC, "ListParticipants")
async def list_participants(ctx: CallContext, req: ListParticipantsRequest) -> ListParticipantsResponse:
    ctx.require_room_admin(req.room)
    entry = ctx.lk.state.rooms.get(req.room)
    return ListParticipantsResponse(participants=list(entry.participants.values()) if entry else [])


@handles(SVC, "GetParticipant")
async def get_participant(ctx: CallContext, req: RoomParticipantIdentity) -> ParticipantInfo:
    ctx.require_room_admin(req.room)
    return _participant(ctx.lk.state, req.room, req.identity)


@handles(SVC, "RemoveParticipant")
async def remove_participant(ctx: CallContext, req: RoomParticipantIdentity) -> RemoveParticipantResponse:
    ctx.require_room_admin(req.room)
    if ctx.lk.state.leave(req.room, req.identity, DisconnectReason.PARTICIPANT_REMOVED) is None:
        raise TwirpError("not_found", "participant not found")
    return RemoveParticipantResponse()


@handles(SVC, "MutePublishedTrack")
async def mute_published_track(ctx: CallContext, req: MuteRoomTrackRequest) -> MuteRoomTrackResponse:
    ctx.require_room_admin(req.room)
    participant = _participant(ctx.lk.state, req.room, req.identity)
    track = next((t for t in participant.tracks if t.sid == req.track_sid), None)
    if track is None:
        raise TwirpError("not_found", "track is not found")
    if not req.muted and not ctx.lk.enable_remote_unmute:
        raise TwirpError("failed_precondition", "remote unmute not enabled")
    track.muted = req.muted
    ctx.lk.state.touch(participant)
    return MuteRoomTrackResponse(track=track)


@handles(SVC, "UpdateParticipant")
async def update_participant(ctx: CallContext, req: UpdateParticipantRequest) -> ParticipantInfo:
    ctx.require_room_admin(req.room)
    participant = _participant(ctx.lk.state, req.room, req.identity)
    if req.metadata:
        participant.metadata = req.metadata
    if req.name:
        participant.name = req.name
    if req.HasField("permission"):
        participant.permission.CopyFrom(req.permission)
    for key, value in req.attributes.items():
        if value:
            participant.attributes[key] = value
        else:  # an empty value deletes the attribute
            participant.attributes.pop(key, None)
    ctx.lk.state.touch(participant)
    return participant


@handles(SVC, "UpdateSubscriptions")
async def update_subscriptions(ctx: CallContext, req: UpdateSubscriptionsRequest) -> UpdateSubscriptionsResponse:
    ctx.require_room_admin(req.room)
    _participant(ctx.lk.state, req.room, req.identity)
    return UpdateSubscriptionsResponse()


@handles(SVC, "SendData")
async def send_data(ctx: CallContext, req: SendDataRequest) -> SendDataResponse:
    ctx.require_room_admin(req.room)
    if req.nonce and len(req.nonce) != 16:
        msg = f"nonce should be 16-bytes or not present, got: {len(req.nonce)} bytes"
        raise TwirpError("invalid_argument", msg)
    if req.room not in ctx.lk.state.rooms:
        raise TwirpError("not_found", ROOM_NOT_FOUND)
    ctx.lk.state.sent_data.append(req)
    return SendDataResponse()


@handles(SVC, "UpdateRoomMetadata")
async def update_room_metadata(ctx: CallContext, req: UpdateRoomMetadataRequest) -> Room:
    ctx.require_room_admin(req.room)
    entry = ctx.lk.state.rooms.get(req.room)
    if entry is None:
        raise TwirpError("not_found", ROOM_NOT_FOUND)
    entry.room.metadata = req.metadata
    return ctx.lk.state.room_info(req.room)
