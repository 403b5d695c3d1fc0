"""Concurrency: N open calls held by ONE worker process; its RSS and the latency of signals and queries.

    .venv/bin/python -m bench.concurrency [--calls 10000] [--probes 500] [--worker telephony] [--sandboxed]

Calls are inbound, media mode ``stream`` (no LiveKit): each is signal-with-started with ``connected`` exactly as
the webhooks hand calls to Temporal (``api.webhooks.calls.start_call``), directly from this process at
concurrency 50 (the API hop is measured by ``bench.ingress``), in batches of ``--batch`` (each batch settles
before the next starts; no new batch after ``--start-budget`` seconds, so the run stays bounded and says how
many calls it held). The worker routes each call, opens the Call row and records it CONNECTED; the call then
waits (timers: max duration). Settled = the Call row says CONNECTED. Then: worker RSS (VmRSS; VmHWM = peak);
``--probes`` sequential probes to random open calls, alternating a ``get_state`` query and a DTMF signal
(signal, then query until the digit shows), each call touched once (mostly evicted from the sticky cache
when N > cache: "cold"); the same on 100 calls just touched ("warm", the baseline); then every call is hung
up (signal, same batches) and the ends are timed.
``--worker telephony`` runs ``telephony worker --role calls`` (its defaults: cache 400, no sandbox; SMS threads
and transcriptions run in the speech role, which this bench does not start), ``--sandboxed`` with
TELEPHONY_WORKFLOW_SANDBOX=true as a baseline; ``--worker bench`` runs ``bench._worker`` (the call role too) with
``--cache`` (and ``--unsandboxed``).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from temporalio.client import Client

from bench._support import BIN, Child, Line, exit_now, load_average, rss_mb, stack, summary_ms, table
from models import calls as c
from models.call_contract import call_workflow_id, twilio_inbound_call
from models.enums import CallState, MediaMode
from workers.worker_role import WorkerRole
from workflows.call_client import CallClient
from workflows.calls import CallWorkflow

CONCURRENCY = 50


def vm(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def states(db: Path) -> dict[str, int]:
    """Call rows per state, read straight from the SQLite file."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        rows = conn.execute("SELECT state, count(*) FROM calls GROUP BY state").fetchall()
    return {str(state).lower(): int(n) for state, n in rows}


async def fan_out(items: list[str], act: Callable[[str], Awaitable[None]], concurrency: int = CONCURRENCY) -> int:
    """Run ``act`` over ``items`` with ``concurrency`` in flight; returns the number of errors."""
    queue = list(reversed(items))
    errors = 0

    async def lane() -> None:
        nonlocal errors
        while queue:
            item = queue.pop()
            try:
                await act(item)
            except Exception as exc:  # counted and shown once, never fatal
                errors += 1
                if errors == 1:
                    print(f"# first error: {exc!r}")

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return errors


async def wait_for(db: Path, state: CallState, count: int, worker: Child, limit: float, label: str) -> float:
    """Seconds until ``count`` Call rows are in ``state`` (or ``limit``), sampling the worker's RSS."""
    started = time.monotonic()
    last_print = 0.0
    while True:
        if worker.proc.poll() is not None:
            raise RuntimeError(f"the worker exited ({worker.proc.returncode}): see its log")
        counts = states(db)
        done = sum(counts.get(key, 0) for key in {state.value.lower(), state.name.lower()})
        elapsed = time.monotonic() - started
        if elapsed - last_print >= 15 or done >= count:
            print(
                f"# {label}: {done}/{count} {state.value} after {elapsed:.0f} s, worker RSS {rss_mb(worker.pid):.0f} MB"
            )
            last_print = elapsed
        if done >= count or elapsed > limit:
            return elapsed
        await asyncio.sleep(1)


def starter(client: Client, line: Line, task_queue: str) -> Callable[[str], Awaitable[None]]:
    calls = CallClient(client, task_queue)

    async def start(sid: str) -> None:
        call = twilio_inbound_call(
            space_id=line.space_id,
            phone_number_id=None,
            media_mode=MediaMode.STREAM,
            call_sid=sid,
            from_number=f"+1628{int(sid[-7:], 16) % 10_000_000:07d}",
            to_number=line.e164,
        )
        await calls.start(call, c.ConnectedEvent())

    return start


async def probe(client: Client, space_id: str, sids: list[str]) -> tuple[list[float], list[float]]:
    """Sequential probes, alternating over ``sids`` so that each call is touched once (cold stays cold):
    a ``get_state`` query, or a DTMF signal then queries until the digit shows (seconds each)."""
    queries: list[float] = []
    signals: list[float] = []
    for n, sid in enumerate(sids):
        handle = client.get_workflow_handle_for(CallWorkflow.run, call_workflow_id(space_id, sid))
        t0 = time.perf_counter()
        if n % 2 == 0:
            await handle.query(CallWorkflow.get_state)
            queries.append(time.perf_counter() - t0)
            continue
        digit = "0123456789"[n % 10]
        await handle.signal(CallWorkflow.dtmf_received, c.DtmfEvent(digits=digit, event_id=f"bench-{n}"))
        while not (await handle.query(CallWorkflow.get_state)).dtmf_received.endswith(digit):
            pass
        signals.append(time.perf_counter() - t0)
    return queries, signals


async def main(args: argparse.Namespace) -> None:
    async with stack("concurrency", workflow_sandbox=str(args.sandboxed).lower()) as bench:
        api = await bench.start_api()
        line = await bench.line("stream")
        api.stop()  # only needed to provision the number: it would compete for the 2 cores
        if args.worker == "telephony":
            worker = bench.start_worker(role=WorkerRole.CALLS)  # the role that holds calls (no speech stack)
            cache = f"{bench.settings.worker_max_cached_workflows} (`telephony worker --role calls` default)"
        else:
            extra = ["--unsandboxed"] if args.unsandboxed else []
            worker = bench.start_worker(
                [str(BIN / "python"), "-m", "bench._worker", "--max-cached-workflows", str(args.cache), *extra]
            )
            cache = f"{args.cache} (bench._worker{' unsandboxed' if args.unsandboxed else ''})"
        db = bench.dir / "telephony.db"
        await asyncio.sleep(3)
        idle_rss = rss_mb(worker.pid)
        wanted = [f"CA{random.getrandbits(128):032x}" for _ in range(args.calls)]
        start = starter(bench.client, line, bench.settings.task_queue)
        sids: list[str] = []
        start_errors = 0
        t0 = time.monotonic()
        for i in range(0, len(wanted), args.batch):  # paced: a batch, then wait until it is CONNECTED
            if time.monotonic() - t0 > args.start_budget:
                print(f"# start budget of {args.start_budget:.0f} s spent: holding {len(sids)} calls, not {args.calls}")
                break
            batch = wanted[i : i + args.batch]
            start_errors += await fan_out(batch, start)
            sids += batch
            await wait_for(db, CallState.CONNECTED, len(sids), worker, args.limit, "settling")
        settled_in = time.monotonic() - t0
        await asyncio.sleep(2)
        open_rss, peak_rss = rss_mb(worker.pid), vm(worker.pid, "VmHWM")
        sample = random.sample(sids, min(args.probes, len(sids)))
        cold_q, cold_s = await probe(bench.client, line.space_id, sample)
        warm_sample = sample[-min(100, len(sample)) :]  # just touched: in the sticky cache (if it holds 100)
        warm_q, warm_s = await probe(bench.client, line.space_id, warm_sample)
        probe_rss = rss_mb(worker.pid)
        t0 = time.monotonic()
        hangup = c.HangupEvent(by="bench")

        calls = CallClient(bench.client, bench.settings.task_queue)

        async def end(sid: str) -> None:
            call = calls.call(call_workflow_id(line.space_id, sid), space_id=line.space_id)
            await call.hangup_received(hangup)

        end_errors = 0
        for i in range(0, len(sids), args.batch):  # paced like the starts: a batch, then wait for it to end
            end_errors += await fan_out(sids[i : i + args.batch], end)
            await wait_for(db, CallState.ENDED, min(len(sids), i + args.batch), worker, args.limit, "ending")
        ended_in = time.monotonic() - t0
        final = states(db)
        print()
        print(f"Concurrency: {len(sids)} open calls (inbound, stream mode, CONNECTED) held by one worker process")
        print(f"worker: {cache}; probes sequential, to random open calls (cold) and to 100 just touched (warm)")
        rows = [
            ["worker RSS idle, before calls", f"{idle_rss:.0f} MB", ""],
            [f"worker RSS with {len(sids)} open calls", f"{open_rss:.0f} MB", "target <= 300 MB"],
            ["worker RSS after the probes", f"{probe_rss:.0f} MB", ""],
            ["worker peak RSS (VmHWM) while starting", f"{peak_rss:.0f} MB", ""],
            [
                "calls opened (started + CONNECTED)",
                f"{len(sids)} in {settled_in:.0f} s",
                f"{len(sids) / settled_in:.1f} calls/s, batches of {args.batch}, {start_errors} errors",
            ],
            [f"get_state query, {len(cold_q)} random", summary_ms(cold_q), ""],
            [f"DTMF signal->seen, {len(cold_s)} random", summary_ms(cold_s), "target p99 <= 200 ms"],
            [f"get_state query, {len(warm_q)} warm", summary_ms(warm_q), "baseline"],
            [f"DTMF signal->seen, {len(warm_s)} warm", summary_ms(warm_s), "baseline"],
            ["hang-up of all calls", f"{ended_in:.0f} s", f"{end_errors} errors; rows {final}"],
        ]
        print(table(["measure", "value", "note"], rows))


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--probes", type=int, default=500)
    parser.add_argument("--worker", choices=["telephony", "bench"], default="telephony")
    parser.add_argument("--cache", type=int, default=1000, help="max_cached_workflows for --worker bench")
    parser.add_argument("--unsandboxed", action="store_true", help="--worker bench without the sandbox")
    parser.add_argument(
        "--sandboxed", action="store_true", help="--worker telephony with TELEPHONY_WORKFLOW_SANDBOX=true (baseline)"
    )
    parser.add_argument("--limit", type=float, default=900, help="seconds to wait for settling/ending")
    parser.add_argument("--batch", type=int, default=250, help="calls started before waiting for them to settle")
    parser.add_argument("--start-budget", type=float, default=480, help="seconds after which no batch is started")
    return parser.parse_args()


if __name__ == "__main__":
    started = time.monotonic()
    asyncio.run(main(parse()))
    print(f"run time: {time.monotonic() - started:.0f} s; {load_average()}")
    sys.stdout.flush()
    exit_now(0)
