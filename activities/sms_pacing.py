"""The send-slot activity: a thread's way to its number's pacer (a workflow cannot send an update itself).

The sends waiting on one worker for the same number go to its pacer together: one update in flight per pacer and
worker process, granting a slot to each, in the order they asked. Temporal refuses more than a few updates in
flight per workflow (10 by default), and a pacer updated once per send became the hot spot of bench/sms.py; a batch
costs one update whatever its size.

Each execution asks with a fresh ticket: an attempt that died after its slot was granted leaves that slot unused
(the number sends less, never more), and a retry takes a new slot at the end of the line rather than reusing one
whose moment may have passed."""

from __future__ import annotations

import asyncio
import uuid
from typing import Protocol

from temporalio import activity

from models import sms_pacing as p


class SlotReserver(Protocol):
    """What the activity needs of the pacer client (``workflows.sms_pacer_client.SmsPacerClient``)."""

    async def reserve(self, key: p.PacerKey, request: p.SlotRequest) -> p.SlotGrants: ...


class _Line:
    """The sends of one worker waiting for slots of one number's pacer, asked for together."""

    def __init__(self, pacers: SlotReserver, key: p.PacerKey) -> None:
        self._pacers = pacers
        self._key = key
        self._waiting: list[tuple[str, asyncio.Future[p.SlotGrant]]] = []
        self._pace = (1.0, 1)
        self._drainer: asyncio.Task[None] | None = None

    async def ask(self, ticket: str, rate: float, burst: int) -> p.SlotGrant:
        future: asyncio.Future[p.SlotGrant] = asyncio.get_running_loop().create_future()
        self._waiting.append((ticket, future))
        self._pace = (rate, burst)
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._waiting:
            batch = self._waiting[: p.MAX_TICKETS_PER_REQUEST]
            del self._waiting[: len(batch)]
            batch = [(ticket, future) for ticket, future in batch if not future.done()]  # timed out meanwhile
            if not batch:
                continue
            rate, burst = self._pace
            request = p.SlotRequest(f"slots-{uuid.uuid4().hex}", [t for t, _ in batch], rate, burst)
            try:
                granted = await self._pacers.reserve(self._key, request)
            except BaseException as exc:  # every asker's activity fails and is retried by its policy
                stopping = not isinstance(exc, Exception)  # cancelled (the worker stops): nobody is answered
                for _, future in batch + (self._waiting if stopping else []):
                    if future.done():
                        continue
                    if stopping:
                        future.cancel()
                    else:
                        future.set_exception(exc)
                if stopping:
                    raise
                continue
            for (_, future), grant in zip(batch, granted.grants, strict=True):
                if not future.done():
                    future.set_result(grant)


class SmsPacingActivities:
    def __init__(self, pacers: SlotReserver) -> None:
        self._pacers = pacers
        self._lines: dict[p.PacerKey, _Line] = {}

    @activity.defn
    async def reserve_send_slot(self, request: p.ReserveSlotInput) -> p.SlotGrant:
        key = p.PacerKey(request.space_id, request.our_number)
        line = self._lines.get(key)
        if line is None:
            line = self._lines[key] = _Line(self._pacers, key)
        ticket = f"{request.message_id}-{uuid.uuid4().hex[:12]}"
        return await line.ask(ticket, request.messages_per_second, request.burst)
