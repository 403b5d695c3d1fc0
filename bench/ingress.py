"""Ingress: signed Twilio voice webhooks -> CallWorkflow started, through the real API over loopback HTTP,
beside raw ``client.start_workflow`` of the same workflow on the same server in the same run.

    .venv/bin/python -m bench.ingress [--calls 1000] [--concurrency 50] [--rounds 2]

No worker runs: both paths only start workflows (the started calls wait on the task queue). Each round runs
calls/rounds through each path, alternating which goes first, so a growing Temporal database weighs on both.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable

import aiohttp
from temporalio.client import Client
from twilio.request_validator import RequestValidator

from bench._support import Line, Stack, exit_now, load_average, pct, stack, summary_ms, table, tree_pids, tree_rss_mb
from models import calls as c
from models.call_contract import twilio_inbound_call
from models.enums import MediaMode
from tests.support.proc_stats import CpuMeter
from workflows.call_client import CallClient

Attempt = Callable[[int], Awaitable[None]]


def _params(line: Line) -> dict[str, str]:
    return {
        "CallSid": "CA" + uuid.uuid4().hex,
        "AccountSid": line.account_sid,
        "From": "+14155550199",
        "To": line.e164,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
    }


def webhook_attempt(http: aiohttp.ClientSession, line: Line, url: str) -> Attempt:
    """The carrier's side. aiohttp rather than httpx: the carrier is not on our two cores, so its client should
    weigh as little as it can here (httpx cost this process 4.5 ms of CPU per webhook, aiohttp about a third)."""
    validator = RequestValidator(line.auth_token)

    async def attempt(_: int) -> None:
        params = _params(line)
        signature = validator.compute_signature(url, params)
        async with http.post(url, data=params, headers={"X-Twilio-Signature": signature}) as response:
            text = await response.text()
            if response.status != 200 or "<Stream" not in text:
                raise RuntimeError(f"webhook answered {response.status}: {text[:200]}")

    return attempt


def raw_attempt(client: Client, line: Line, task_queue: str) -> Attempt:
    """What the webhook does after verifying and looking up the number: the typed client's start."""
    calls = CallClient(client, task_queue)

    async def attempt(_: int) -> None:
        start = twilio_inbound_call(
            space_id=line.space_id,
            phone_number_id=None,
            media_mode=MediaMode.STREAM,
            call_sid="CA" + uuid.uuid4().hex,
            from_number="+14155550199",
            to_number=line.e164,
        )
        await calls.start(start)

    return attempt


async def drive(attempt: Attempt, calls: int, concurrency: int) -> tuple[float, list[float], int]:
    """Run ``calls`` attempts with ``concurrency`` in flight: (wall seconds, latencies, errors)."""
    latencies: list[float] = []
    errors = 0
    next_index = 0

    async def lane() -> None:
        nonlocal next_index, errors
        while next_index < calls:
            i, next_index = next_index, next_index + 1
            t0 = time.perf_counter()
            try:
                await attempt(i)
            except Exception as exc:  # counted and shown once, never fatal
                errors += 1
                if errors == 1:
                    print(f"# first error: {exc!r}")
                continue
            latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, errors


async def main(args: argparse.Namespace) -> None:
    async with stack("ingress") as bench:
        api = await bench.start_api(args.api_workers)
        line = await bench.line("stream")
        url = f"{bench.api_url}/webhooks/twilio/voice"
        # Idle connections are dropped before uvicorn's 5 s keep-alive ends them: otherwise a request sent on one
        # the server is closing fails (ServerDisconnectedError) after the raw round leaves them idle.
        connector = aiohttp.TCPConnector(limit=args.concurrency, keepalive_timeout=2)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as http:
            paths: dict[str, Attempt] = {
                "API webhook": webhook_attempt(http, line, url),
                "raw start_workflow": raw_attempt(bench.client, line, bench.settings.task_queue),
            }
            for attempt in paths.values():  # warm-up: connections, imports, the API's Temporal client
                await drive(attempt, 2 * args.concurrency, args.concurrency)
            rss_before = tree_rss_mb(api.pid)
            temporal = next(child for child in bench.children if child.name == "temporal")
            pids = {"temporal": temporal.pid, "bench": os.getpid()}
            pids |= {f"api {i}": pid for i, pid in enumerate(tree_pids(api.pid))}
            cpu = CpuMeter(pids)
            spent = {name: dict.fromkeys(("temporal", "api", "bench"), 0.0) for name in paths}
            results = {name: (0.0, list[float](), 0) for name in paths}
            per_round = args.calls // args.rounds
            for r in range(args.rounds):
                order = list(paths) if r % 2 == 0 else list(reversed(paths))
                for name in order:
                    cpu.lap()
                    wall, lat, err = await drive(paths[name], per_round, args.concurrency)
                    for process, seconds in cpu.lap().items():
                        spent[name][process.split()[0]] += seconds
                    total = results[name]
                    results[name] = (total[0] + wall, total[1] + lat, total[2] + err)
                    print(f"# round {r + 1} {name:18s} {per_round / wall:6.1f} calls/s  {summary_ms(lat)}")
            rss_after = tree_rss_mb(api.pid)
        await report(bench, args, results, spent, rss_before, rss_after)


async def report(
    bench: Stack,
    args: argparse.Namespace,
    results: dict[str, tuple[float, list[float], int]],
    spent: dict[str, dict[str, float]],
    rss_before: float,
    rss_after: float,
) -> None:
    rows = []
    rates = {}
    for name, (wall, lat, err) in results.items():
        rates[name] = len(lat) / wall
        ms = [x * 1000 for x in lat]
        row = [name, len(lat), err, f"{rates[name]:.1f}", f"{pct(ms, 50):.1f}", f"{pct(ms, 99):.1f}"]
        per_call = {process: seconds * 1000 / max(len(lat), 1) for process, seconds in spent[name].items()}
        rows.append([*row, *(f"{per_call[process]:.2f}" for process in ("temporal", "api", "bench"))])
    running = await bench.client.count_workflows(f"WorkflowType = '{c.CALL_WORKFLOW}'")
    print()
    print(f"Ingress: {args.calls} calls per path, concurrency {args.concurrency}, {args.rounds} alternating rounds")
    print("(no worker running: 'started' = the start RPC answered; the API answered TwiML <Connect><Stream>)")
    header = ["path", "calls", "errors", "calls/s", "p50 ms", "p99 ms", "server CPU", "API CPU", "client CPU"]
    print(table(header, rows))
    print("CPU columns: milliseconds per call of the Temporal server, the API processes, and this process")
    ratio = rates["API webhook"] / rates["raw start_workflow"]
    print(f"ratio API/raw: {ratio:.2f}x  (target >= 0.9x)")
    print(
        f"API RSS ({args.api_workers} process{'es' if args.api_workers > 1 else ''}): "
        f"{rss_before:.0f} MB after warm-up, {rss_after:.0f} MB after the run"
    )
    print(f"CallWorkflow executions in the visibility store (may lag): {running.count}")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000, help="calls per path (default 1000)")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--api-workers", type=int, default=1, help="API processes (telephony api --workers)")
    return parser.parse_args()


if __name__ == "__main__":
    started = time.monotonic()
    asyncio.run(main(parse()))
    print(f"run time: {time.monotonic() - started:.0f} s; {load_average()}")
    exit_now(0)
