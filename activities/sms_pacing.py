"""The send-slot activity: a thread's way to its number's pacer (a workflow cannot send an update itself).

The sends waiting on one worker for the same number go to its pacer together (``activities/pacer_line.py``).

Each execution asks with a fresh ticket: an attempt that died after its slot was granted leaves that slot unused
(the number sends less, never more), and a retry takes a new slot at the end of the line rather than reusing one
whose moment may have passed."""

from __future__ import annotations

import uuid

from temporalio import activity

from activities.pacer_line import SlotLine, SlotReserver
from models import sms_pacing as p


class SmsPacingActivities:
    def __init__(self, pacers: SlotReserver[p.PacerKey]) -> None:
        self._pacers = pacers
        self._lines: dict[p.PacerKey, SlotLine[p.PacerKey]] = {}

    @activity.defn
    async def reserve_send_slot(self, request: p.ReserveSlotInput) -> p.SlotGrant:
        key = p.PacerKey(request.space_id, request.our_number)
        line = self._lines.get(key)
        if line is None:
            line = self._lines[key] = SlotLine(self._pacers, key)
        ticket = f"{request.message_id}-{uuid.uuid4().hex[:12]}"
        return await line.ask(ticket, request.messages_per_second, request.burst)
