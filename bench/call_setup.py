"""Call setup: ringing -> agent dispatched, through the LiveKit stand-in.

    .venv/bin/python -m bench.call_setup [--calls 200] [--concurrency 10]

A SIP caller joins a room in the stand-in, which sends the signed ``participant_joined`` webhook to the API
(``telephony api``, a child process); the API signal-with-starts the CallWorkflow; the call worker
(``telephony worker --role calls``, a child process) routes the call, opens it, creates the room, records it and
dispatches the agent.
Measured per call: from the webhook POST leaving the stand-in to ``CreateDispatch`` arriving at it.
Baseline in the same run: the same StartCall + ``connected`` signal-with-start made directly by this process
(no API hop), same worker, same measure. Each path runs ``--calls`` sequentially and ``--calls`` at
``--concurrency``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web
from livekit.protocol.agent_dispatch import CreateAgentDispatchRequest
from livekit.protocol.models import ParticipantInfo
from temporalio.client import Client

from bench._support import Line, exit_now, load_average, pct, rss_mb, stack, summary_ms, table
from models import calls as c
from models.call_contract import livekit_sip_call
from tests.livekit_standin import LiveKitStandIn
from tests.livekit_standin.sip_calls import admit_inbound_caller
from tests.support.proc_stats import CpuMeter
from workers.worker_role import WorkerRole
from workflows.call_client import CallClient

Send = Callable[[str, ParticipantInfo], Awaitable[None]]


class TimedStandIn(LiveKitStandIn):
    """The stand-in, noting when each room's ``CreateDispatch`` request arrives (before it is handled)."""

    def __init__(self) -> None:
        super().__init__()
        self.dispatched: dict[str, asyncio.Future[float]] = {}

    def expect(self, room: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.dispatched[room] = future
        return future

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        arrived = time.perf_counter()
        if request.path.endswith("/livekit.AgentDispatchService/CreateDispatch"):
            message = CreateAgentDispatchRequest.FromString(await request.read())
            future = self.dispatched.get(message.room)
            if future is not None and not future.done():
                future.set_result(arrived)
        return await super()._handle(request)


def via_webhook(standin: TimedStandIn, api_url: str) -> Send:
    async def send(room: str, participant: ParticipantInfo) -> None:
        status = await standin.send_webhook("participant_joined", room=room, participant=participant)
        if status != 204:
            raise RuntimeError(f"webhook answered {status}")

    return send


def direct(client: Client, line: Line, task_queue: str) -> Send:
    """What the webhook hands to Temporal for this event, done without the API."""
    calls = CallClient(client, task_queue)

    async def send(room: str, participant: ParticipantInfo) -> None:
        start = livekit_sip_call(
            space_id=line.space_id,
            phone_number_id=None,
            sip_call_id=participant.attributes["sip.callID"],
            from_number=participant.attributes["sip.phoneNumber"],
            to_number=line.e164,
            room=room,
            caller_identity=participant.identity,
        )
        connected = c.ConnectedEvent(room_name=room, participant_identity=participant.identity)
        await calls.start(start, connected)

    return send


async def one_call(standin: TimedStandIn, line: Line, send: Send) -> tuple[float, float]:
    """(webhook answered, agent dispatched) in seconds from the send."""
    room = f"call-{uuid.uuid4().hex[:12]}"
    caller = f"+1415{uuid.uuid4().int % 10_000_000:07d}"
    participant = admit_inbound_caller(standin.state, room, caller, line.e164, call_id=f"SCL_{uuid.uuid4().hex}")
    dispatched = standin.expect(room)
    t0 = time.perf_counter()
    await send(room, participant)
    answered = time.perf_counter() - t0
    at = await asyncio.wait_for(dispatched, timeout=30)
    standin.dispatched.pop(room, None)
    return answered, at - t0


async def run(
    standin: TimedStandIn, line: Line, send: Send, calls: int, concurrency: int
) -> tuple[list[float], list[float], int, float]:
    answered: list[float] = []
    setup: list[float] = []
    errors = 0
    remaining = calls

    async def lane() -> None:
        nonlocal remaining, errors
        while remaining > 0:
            remaining -= 1
            try:
                a, s = await one_call(standin, line, send)
            except Exception as exc:  # counted and shown once, never fatal
                errors += 1
                if errors == 1:
                    print(f"# first error: {exc!r}")
                continue
            answered.append(a)
            setup.append(s)

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return answered, setup, errors, time.perf_counter() - started


async def main(args: argparse.Namespace) -> None:
    standin = TimedStandIn()
    await standin.start()
    try:
        overrides = {
            "livekit_url": standin.url,
            "livekit_api_key": standin.api_key,
            "livekit_api_secret": standin.api_secret,
            "livekit_sip_host": "sip.livekit.test",
        }
        async with stack("call-setup", **overrides) as bench:
            await bench.start_api()
            worker = bench.start_worker(role=WorkerRole.CALLS)  # a set-up runs in the call role only
            api = next(child for child in bench.children if child.name == "api")
            temporal = next(child for child in bench.children if child.name == "temporal")
            line = await bench.line("livekit")
            standin.webhook_url = f"{bench.api_url}/webhooks/livekit"
            paths = {
                "webhook via API": via_webhook(standin, bench.api_url),
                "direct signal-with-start": direct(bench.client, line, bench.settings.task_queue),
            }
            for send in paths.values():  # warm-up: the worker's first tasks, connections, imports
                await run(standin, line, send, 10, 1)
            rows = []
            cpu = CpuMeter({"temporal": temporal.pid, "worker": worker.pid, "api": api.pid, "bench": os.getpid()})
            for concurrency in (1, args.concurrency):
                for name, send in paths.items():
                    cpu.lap()
                    answered, setup, errors, wall = await run(standin, line, send, args.calls, concurrency)
                    spent = {k: v * 1000 / max(len(setup), 1) for k, v in cpu.lap().items()}
                    print(f"# {name:25s} x{concurrency:<3d} setup {summary_ms(setup)}  ({len(setup) / wall:.1f}/s)")
                    ms = [x * 1000 for x in setup]
                    hop = [x * 1000 for x in answered]
                    row = [name, concurrency, len(setup), errors, f"{pct(hop, 50):.1f}", f"{pct(ms, 50):.1f}"]
                    rate = f"{len(setup) / wall:.1f}"
                    costs = [f"{spent[k]:.0f}" for k in ("temporal", "worker", "api", "bench")]
                    rows.append([*row, f"{pct(ms, 99):.1f}", f"{max(ms, default=0):.1f}", rate, *costs])
            worker_rss = rss_mb(worker.pid)
            print()
            print("Call setup: participant_joined webhook sent -> CreateDispatch received by the LiveKit stand-in")
            print("(API and worker are child processes: `telephony api`, `telephony worker --role calls`, defaults)")
            header = ["path", "conc", "calls", "errors", "answer p50", "setup p50", "setup p99", "max", "calls/s"]
            header += ["server CPU", "worker CPU", "API CPU", "stand-in CPU"]
            print(table(header, rows))
            print("targets: setup p50 <= 150 ms, p99 <= 400 ms; 'answer' = until the webhook's HTTP answer (ms)")
            print("CPU columns: milliseconds per set-up of each process (the stand-in runs in this bench process)")
            print(
                f"worker RSS at the end: {worker_rss:.0f} MB; CreateDispatch requests seen: "
                f"{len(standin.calls('CreateDispatch'))}"
            )
    finally:
        await standin.stop()


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200, help="calls per path and concurrency (default 200)")
    parser.add_argument("--concurrency", type=int, default=10, help="the 'modest concurrency' (default 10)")
    return parser.parse_args()


if __name__ == "__main__":
    started = time.monotonic()
    asyncio.run(main(parse()))
    print(f"run time: {time.monotonic() - started:.0f} s; {load_average()}")
    exit_now(0)
