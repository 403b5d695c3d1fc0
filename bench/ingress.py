"""Ingress: signed Twilio voice webhooks -> CallWorkflow started, through the real API over loopback HTTP,
beside raw ``client.start_workflow`` of the same workflow on the same server in the same run.

    .venv/bin/python -m bench.ingress [--calls 1000] [--concurrency 50] [--rounds 2]

No worker runs: both paths only start workflows (the started calls wait on the task queue). Each round runs
calls/rounds through each path, alternating which goes first, so a growing Temporal database weighs on both.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import httpx
from temporalio.client import Client
from twilio.request_validator import RequestValidator

from bench._support import Line, Stack, exit_now, load_average, pct, stack, summary_ms, table, tree_rss_mb
from models import calls as c
from models.call_contract import twilio_inbound_call
from models.enums import MediaMode
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


def webhook_attempt(http: httpx.AsyncClient, line: Line, url: str) -> Attempt:
    validator = RequestValidator(line.auth_token)

    async def attempt(_: int) -> None:
        params = _params(line)
        signature = validator.compute_signature(url, params)
        response = await http.post(url, data=params, headers={"X-Twilio-Signature": signature})
        if response.status_code != 200 or "<Stream" not in response.text:
            raise RuntimeError(f"webhook answered {response.status_code}: {response.text[:200]}")

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
        limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
        async with httpx.AsyncClient(timeout=30, limits=limits) as http:
            paths: dict[str, Attempt] = {
                "API webhook": webhook_attempt(http, line, url),
                "raw start_workflow": raw_attempt(bench.client, line, bench.settings.task_queue),
            }
            for attempt in paths.values():  # warm-up: connections, imports, the API's Temporal client
                await drive(attempt, 2 * args.concurrency, args.concurrency)
            rss_before = tree_rss_mb(api.pid)
            results = {name: (0.0, list[float](), 0) for name in paths}
            per_round = args.calls // args.rounds
            for r in range(args.rounds):
                order = list(paths) if r % 2 == 0 else list(reversed(paths))
                for name in order:
                    wall, lat, err = await drive(paths[name], per_round, args.concurrency)
                    total = results[name]
                    results[name] = (total[0] + wall, total[1] + lat, total[2] + err)
                    print(f"# round {r + 1} {name:18s} {per_round / wall:6.1f} calls/s  {summary_ms(lat)}")
            rss_after = tree_rss_mb(api.pid)
        await report(bench, args, results, rss_before, rss_after)


async def report(
    bench: Stack,
    args: argparse.Namespace,
    results: dict[str, tuple[float, list[float], int]],
    rss_before: float,
    rss_after: float,
) -> None:
    rows = []
    rates = {}
    for name, (wall, lat, err) in results.items():
        rates[name] = len(lat) / wall
        ms = [x * 1000 for x in lat]
        rows.append([name, len(lat), err, f"{rates[name]:.1f}", f"{pct(ms, 50):.1f}", f"{pct(ms, 99):.1f}"])
    running = await bench.client.count_workflows(f"WorkflowType = '{c.CALL_WORKFLOW}'")
    print()
    print(f"Ingress: {args.calls} calls per path, concurrency {args.concurrency}, {args.rounds} alternating rounds")
    print("(no worker running: 'started' = the start RPC answered; the API answered TwiML <Connect><Stream>)")
    print(table(["path", "calls", "errors", "calls/s", "p50 ms", "p99 ms"], rows))
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
