"""The send-slot activity: a thread's way to its number's pacer (a workflow cannot send an update itself).

Each execution asks with a fresh ticket: an attempt that died after its slot was granted leaves that slot unused
(the number sends less, never more), and a retry takes a new slot at the end of the line rather than reusing one
whose moment may have passed."""

from __future__ import annotations

import uuid
from typing import Protocol

from temporalio import activity

from models import sms_pacing as p


class SlotReserver(Protocol):
    """What the activity needs of the pacer client (``workflows.sms_pacer_client.SmsPacerClient``)."""

    async def reserve(self, key: p.PacerKey, request: p.SlotRequest) -> p.SlotGrant: ...


class SmsPacingActivities:
    def __init__(self, pacers: SlotReserver) -> None:
        self._pacers = pacers

    @activity.defn
    async def reserve_send_slot(self, request: p.ReserveSlotInput) -> p.SlotGrant:
        ticket = f"{request.message_id}-{uuid.uuid4().hex[:12]}"
        slot = p.SlotRequest(ticket, request.messages_per_second, request.burst)
        return await self._pacers.reserve(p.PacerKey(request.space_id, request.our_number), slot)
