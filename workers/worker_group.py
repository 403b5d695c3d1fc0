"""Several Temporal workers of one process run and stop together (``async with`` or ``run()``), like one."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self

from temporalio.worker import Worker


class WorkerGroup:
    def __init__(self, *workers: Worker) -> None:
        self.workers = workers

    async def run(self) -> None:
        await asyncio.gather(*(worker.run() for worker in self.workers))

    async def __aenter__(self) -> Self:
        for worker in self.workers:
            await worker.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for worker in reversed(self.workers):
            await worker.__aexit__(exc_type, exc, tb)
