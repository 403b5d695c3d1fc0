"""Slots of one pacer asked for together: the askers waiting on one worker for the same pacer go to it in one
update (one update in flight per pacer and worker process), each granted a slot in the order they asked. Temporal
refuses more than a few updates in flight per workflow (10 by default), and a pacer updated once per send became
the hot spot of bench/sms.py; a batch costs one update whatever its size. Used by the SMS send-slot activity and
the campaigns' dial-slot activity."""

from __future__ import annotations

import asyncio
import uuid
from typing import Generic, Protocol, TypeVar

from models import sms_pacing as p

K = TypeVar("K", contravariant=True)


class SlotReserver(Protocol[K]):
    """What a line needs of a pacer client (``workflows.pacer_client.PacerClient``)."""

    async def reserve(self, key: K, request: p.SlotRequest) -> p.SlotGrants: ...


class SlotLine(Generic[K]):
    """The askers of one worker waiting for slots of one pacer, asked for together."""

    def __init__(self, pacers: SlotReserver[K], key: K) -> None:
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
