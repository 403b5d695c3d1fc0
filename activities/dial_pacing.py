"""Dial slots (``models/dial_pacing.py``): the campaigns' admission activity, and the gate the carrier activity
passes right before its request. The askers waiting on one worker for the same pacer ask together
(``activities/pacer_line.py``).

Each ask carries a fresh ticket: an attempt that died after its slot was granted leaves that slot unused (the route
dials less, never more), and a retry takes a new slot at the end of the line."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta

from temporalio import activity

from activities.pacer_line import SlotLine, SlotReserver
from models import sms_pacing as p
from models.dial_pacing import CARRIER_LATENESS, STAGE_CARRIER, DialPacerKey, ReserveDialSlotInput

log = logging.getLogger(__name__)
MIN_LATENESS = 0.1  # seconds: at high rates a window holds many dials, and a loaded event loop lags this much


class DialSlots:
    def __init__(self, pacers: SlotReserver[DialPacerKey]) -> None:
        self._pacers = pacers
        self._lines: dict[DialPacerKey, SlotLine[DialPacerKey]] = {}

    async def slot(self, key: DialPacerKey, calls_per_second: float, name: str) -> p.SlotGrant:
        line = self._lines.get(key)
        if line is None:
            line = self._lines[key] = SlotLine(self._pacers, key)
        return await line.ask(f"{name}-{uuid.uuid4().hex[:12]}", calls_per_second, 1)

    async def carrier_turn(self, space_id: str, route: str, calls_per_second: float, name: str) -> None:
        """Return at this dial's slot of the route's carrier pacer (asking again when woken too late)."""
        key = DialPacerKey(space_id, route, STAGE_CARRIER)
        lateness = timedelta(seconds=max(CARRIER_LATENESS / calls_per_second, MIN_LATENESS))
        while True:
            grant = await self.slot(key, calls_per_second, name)
            wait = (grant.at - datetime.now(UTC)).total_seconds()
            if wait > 0:
                await asyncio.sleep(wait)
            if datetime.now(UTC) - grant.at <= lateness:
                return
            log.warning("dial slot missed: asking again", extra={"route": route})


class DialPacingActivities:
    def __init__(self, slots: DialSlots) -> None:
        self._slots = slots

    @activity.defn
    async def reserve_dial_slot(self, request: ReserveDialSlotInput) -> p.SlotGrant:
        """A slot of the route's admission pacer for a campaign's dial (the campaign waits for it durably)."""
        key = DialPacerKey(request.space_id, request.route)
        return await self._slots.slot(key, request.calls_per_second, request.call_id)
