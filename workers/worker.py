"""The Temporal worker process (``telephony worker --role calls|speech|all``): builds the clients a role's
activities need, then polls the role's task queues.

- ``calls``: ``CallWorkflow``, campaigns, numbers, provisioning, retention and their activities on the platform's
  task queue, and the pacers on theirs (``workers.call_worker``). It holds every open call and stays small.
- ``speech``: SMS threads (agent replies through livekit-agents) and recording transcriptions (Whisper) on the
  speech task queue (``workers.speech_worker``); only this role imports the speech stack, at start.
- ``all`` (default): both in one process, as a single-machine setup or a test needs.

A deployment runs both roles (``telephony dev`` and docker-compose run one process of each)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from temporalio.client import Client
from temporalio.worker import Worker

from models.payloads import DATA_CONVERTER
from models.settings import Settings
from models.task_queues import speech_task_queue
from workers.call_worker import CallActivityClients, build_call_worker, build_pacer_worker
from workers.worker_clients import worker_clients
from workers.worker_group import WorkerGroup
from workers.worker_role import WorkerRole
from workflows.retention_schedule import ensure_retention_schedule

if TYPE_CHECKING:
    from workers.speech_worker import SpeechActivityClients

log = logging.getLogger(__name__)


@dataclass
class ActivityClients:
    """The activities of the roles a process runs (None: not this process's role)."""

    calls: CallActivityClients | None
    speech: SpeechActivityClients | None


@asynccontextmanager
async def activity_clients(
    settings: Settings, temporal: Client | None = None, role: WorkerRole = WorkerRole.ALL
) -> AsyncIterator[ActivityClients]:
    """Every client the role's activities use, built from settings and closed on exit. ``temporal``: the
    activities that talk to workflows get it (the carrier keeps its accounts' calls-per-second limits through
    their dial pacers)."""
    async with worker_clients(settings) as clients:
        speech = None
        if role.speaks:
            from workers.speech_worker import SpeechActivityClients  # the speech stack: this role only, at start

            speech = SpeechActivityClients.build(clients, settings)
        calls = CallActivityClients.build(clients, settings, temporal) if role.holds_calls else None
        yield ActivityClients(calls, speech)


def build_worker(client: Client, settings: Settings, clients: ActivityClients) -> WorkerGroup:
    """The workers of the roles ``clients`` were built for: run together (``run()``) or ``async with``.

    Both roles in one process (``all``): the platform's queue also runs SMS threads and transcriptions, as every
    worker did before the roles were split; those started then stay on that queue until they complete."""
    workers: list[Worker] = []
    if clients.speech is not None:
        from workers.speech_worker import SPEECH_WORKFLOWS, build_speech_worker, send_slots

        workers.append(build_speech_worker(client, settings, clients.speech))
    if clients.calls is not None:
        beside: list[type | Callable[..., Any]] = (
            [*SPEECH_WORKFLOWS, *clients.speech.activities_beside_calls(), send_slots(client, settings)]
            if clients.speech is not None
            else []
        )
        workers += [
            build_call_worker(client, settings, clients.calls, beside=beside),
            build_pacer_worker(client, settings),
        ]
    return WorkerGroup(*workers)


def task_queues(settings: Settings, role: WorkerRole) -> list[str]:
    """The queues the role polls besides the pacers' (logged at start)."""
    queues = []
    if role.holds_calls:
        queues.append(settings.task_queue)
    if role.speaks:
        queues.append(speech_task_queue(settings.task_queue))
    return queues


async def run_worker(settings: Settings, role: WorkerRole = WorkerRole.ALL) -> None:
    client = await Client.connect(
        settings.temporal_address, namespace=settings.temporal_namespace, data_converter=DATA_CONVERTER
    )
    async with activity_clients(settings, client, role) as clients:
        if role.holds_calls:
            await ensure_retention_schedule(client, settings.task_queue)
        worker = build_worker(client, settings, clients)
        log.info("worker polling", extra={"role": role.value, "task_queues": task_queues(settings, role)})
        try:
            await worker.run()
        except asyncio.CancelledError:
            log.info("worker stopping")
            raise
