"""In-memory server state: rooms, participants, SIP configuration, dispatches and egresses.

Every state change that LiveKit reports by webhook goes through ``emit`` (the stand-in queues it when
``auto_webhooks`` is on), with a snapshot of the room/participant at that moment.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from livekit.protocol.agent_dispatch import AgentDispatch
from livekit.protocol.egress import EgressInfo, EgressStatus
from livekit.protocol.models import Codec, DisconnectReason, ParticipantInfo, ParticipantPermission, Room
from livekit.protocol.room import SendDataRequest
from livekit.protocol.sip import SIPDispatchRuleInfo, SIPInboundTrunkInfo, SIPOutboundTrunkInfo
from livekit.protocol.webhook import WebhookEvent

from . import ids
from .webhooks import build_event

# livekit-server defaults (config.RoomConfig)
DEFAULT_EMPTY_TIMEOUT = 300
DEFAULT_DEPARTURE_TIMEOUT = 20
DEFAULT_CODECS = ("audio/opus", "audio/red", "video/VP8", "video/H264", "video/VP9", "video/AV1")
ACTIVE_EGRESS = (EgressStatus.EGRESS_STARTING, EgressStatus.EGRESS_ACTIVE, EgressStatus.EGRESS_ENDING)


def now_ns() -> int:
    return time.time_ns()


@dataclass
class RoomEntry:
    room: Room
    participants: dict[str, ParticipantInfo] = field(default_factory=dict)
    dispatches: dict[str, AgentDispatch] = field(default_factory=dict)


class State:
    def __init__(self, emit: Callable[[WebhookEvent], None]) -> None:
        self._emit = emit
        self.rooms: dict[str, RoomEntry] = {}
        self.inbound_trunks: dict[str, SIPInboundTrunkInfo] = {}
        self.outbound_trunks: dict[str, SIPOutboundTrunkInfo] = {}
        self.dispatch_rules: dict[str, SIPDispatchRuleInfo] = {}
        self.egresses: dict[str, EgressInfo] = {}
        self.sent_data: list[SendDataRequest] = []

    # ----------------------------------------------------------------- rooms
    def room_info(self, name: str) -> Room:
        """A copy of the room with its participant/publisher/recording counters up to date."""
        entry = self.rooms[name]
        room = entry.room
        room.num_participants = len(entry.participants)
        room.num_publishers = sum(1 for p in entry.participants.values() if p.tracks)
        room.active_recording = any(e.room_name == name and e.status in ACTIVE_EGRESS for e in self.egresses.values())
        out = Room()
        out.CopyFrom(room)
        return out

    def ensure_room(
        self,
        name: str,
        *,
        empty_timeout: int = 0,
        departure_timeout: int = 0,
        max_participants: int = 0,
        metadata: str = "",
    ) -> tuple[RoomEntry, bool]:
        """The named room, created (and ``room_started`` emitted) when absent."""
        if name in self.rooms:
            return self.rooms[name], False
        now = time.time()
        room = Room(
            sid=ids.new_id(ids.ROOM),
            name=name,
            empty_timeout=empty_timeout or DEFAULT_EMPTY_TIMEOUT,
            departure_timeout=departure_timeout or DEFAULT_DEPARTURE_TIMEOUT,
            max_participants=max_participants,
            creation_time=int(now),
            creation_time_ms=int(now * 1000),
            turn_password=secrets.token_urlsafe(24),
            enabled_codecs=[Codec(mime=m) for m in DEFAULT_CODECS],
            metadata=metadata,
        )
        self.rooms[name] = RoomEntry(room)
        self.emit("room_started", room=self.room_info(name))
        return self.rooms[name], True

    def close_room(self, name: str, *, end_reason: int, disconnect_reason: int) -> bool:
        """Disconnect everyone, end the room's egresses and dispatches, emit ``room_finished``."""
        entry = self.rooms.get(name)
        if entry is None:
            return False
        for identity in list(entry.participants):
            self.leave(name, identity, disconnect_reason)
        for egress in list(self.egresses.values()):
            if egress.room_name == name and egress.status in ACTIVE_EGRESS:
                self.end_egress(egress.egress_id)
        final = self.room_info(name)
        del self.rooms[name]
        self.emit("room_finished", room=final, room_end_reason=end_reason)
        return True

    # ---------------------------------------------------------- participants
    def participant(self, room: str, identity: str) -> ParticipantInfo | None:
        entry = self.rooms.get(room)
        return entry.participants.get(identity) if entry else None

    def join(self, room: str, participant: ParticipantInfo) -> ParticipantInfo:
        """Add ``participant`` (sid, state and join time filled in) to the room, creating it if needed."""
        entry, _ = self.ensure_room(room)
        if participant.identity in entry.participants:
            self.leave(room, participant.identity, DisconnectReason.DUPLICATE_IDENTITY)
        now = time.time()
        if not participant.sid:
            participant.sid = ids.new_id(ids.PARTICIPANT)
        participant.state = ParticipantInfo.State.ACTIVE
        participant.joined_at = int(now)
        participant.joined_at_ms = int(now * 1000)
        participant.version = participant.version or 1
        if not participant.HasField("permission"):
            participant.permission.CopyFrom(
                ParticipantPermission(can_subscribe=True, can_publish=True, can_publish_data=True)
            )
        participant.is_publisher = bool(participant.tracks)
        entry.participants[participant.identity] = participant
        self.emit("participant_joined", room=self.room_info(room), participant=participant)
        return participant

    def leave(self, room: str, identity: str, reason: int) -> ParticipantInfo | None:
        entry = self.rooms.get(room)
        participant = entry.participants.pop(identity, None) if entry else None
        if participant is None:
            return None
        participant.state = ParticipantInfo.State.DISCONNECTED
        participant.disconnect_reason = reason  # type: ignore[assignment]
        self.emit("participant_left", room=self.room_info(room), participant=participant)
        return participant

    def touch(self, participant: ParticipantInfo) -> None:
        participant.version += 1

    # --------------------------------------------------------------- egress
    def end_egress(self, egress_id: str, status: int = EgressStatus.EGRESS_COMPLETE, error: str = "") -> EgressInfo:
        """The egress ends: complete with its file, or failed/aborted with LiveKit's ``error`` (no file)."""
        info = self.egresses[egress_id]
        info.status = status  # type: ignore[assignment]
        if error:
            info.error = error
        info.ended_at = info.updated_at = now_ns()
        if status == EgressStatus.EGRESS_COMPLETE and info.HasField("room_composite"):
            # As egress reports a finished file: where it was uploaded, how long it is.
            for output in info.room_composite.file_outputs:
                where = f"s3://{output.s3.bucket}/{output.filepath}" if output.HasField("s3") else output.filepath
                info.file_results.add(
                    filename=output.filepath,
                    location=where,
                    started_at=info.started_at,
                    ended_at=info.ended_at,
                    duration=max(info.ended_at - info.started_at, 0),
                    size=16_000,
                )
        self.emit("egress_ended", egress_info=info)
        return info

    # -------------------------------------------------------------- webhooks
    def emit(
        self,
        event: str,
        *,
        room: Room | None = None,
        participant: ParticipantInfo | None = None,
        egress_info: EgressInfo | None = None,
        room_end_reason: int = 0,
    ) -> None:
        self._emit(
            build_event(
                event,
                room=room,
                participant=participant,
                egress_info=egress_info,
                room_end_reason=room_end_reason,
            )
        )
