"""A worker like ``telephony worker --role calls`` (same settings, clients, workflows, activities and sticky
timeout: the role that holds calls, without the speech stack) with the knobs the benchmarks compare: the sticky
cache size and the workflow sandbox.

    .venv/bin/python -m bench._worker [--max-cached-workflows 1000] [--unsandboxed]

Settings come from the environment (``TELEPHONY_*``), as for ``telephony worker``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, WorkflowRunner

from bench._support import exit_now
from models.payloads import DATA_CONVERTER
from models.settings import Settings
from workers.call_worker import build_call_worker, build_pacer_worker
from workers.worker import activity_clients
from workers.worker_group import WorkerGroup
from workers.worker_role import WorkerRole
from workflows.sandbox import workflow_runner


async def run(max_cached: int, unsandboxed: bool) -> None:
    settings = Settings()
    client = await Client.connect(
        settings.temporal_address, namespace=settings.temporal_namespace, data_converter=DATA_CONVERTER
    )
    runner: WorkflowRunner = UnsandboxedWorkflowRunner() if unsandboxed else workflow_runner()
    async with activity_clients(settings, client, WorkerRole.CALLS) as clients:
        assert clients.calls is not None
        worker = build_call_worker(client, settings, clients.calls, max_cached, runner)
        await WorkerGroup(worker, build_pacer_worker(client, settings)).run()


async def main(args: argparse.Namespace) -> None:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await run(args.max_cached_workflows, args.unsandboxed)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-cached-workflows", type=int, default=1000)
    parser.add_argument("--unsandboxed", action="store_true")
    asyncio.run(main(parser.parse_args()))
    exit_now(0)
