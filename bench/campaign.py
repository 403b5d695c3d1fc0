"""Campaign: N contacts dialled by one ``CampaignWorkflow`` at max concurrency 100 against the Twilio stand-in.

    .venv/bin/python -m bench.campaign [--contacts 1000 | --full] [--max-concurrency 100] [--cps 10] [--talk 2]
                                       [--baseline 100] [--max-minutes M]

``--full`` is the issue's size, 10,000 contacts. The stack is real processes: Temporal dev server (SQLite WAL),
``telephony api`` (the stand-in's status webhooks go to it over HTTP) and ``telephony worker``; the stand-in runs
in this process and plays every call out (ring 0.3 s, answer, talk ``--talk`` s, hang up). The campaign is
created by the REST CSV upload, as an operator would. ``--max-minutes``: cancel the campaign (hanging up) after
that long and report on what was dialled, with the projection for the whole list.

Printed: dials/s sustained at the carrier vs the CPS limit and the most dials in any one second; the dial path
(child call started → the carrier's ``POST Calls.json``) per call; concurrent calls at the carrier (max); CPU per
dial of each process (worker, Temporal server, API, this process's stand-in); the campaign's own scheduling cost
per dial (its workflow-task time, local activities included, and worker CPU above the baseline's); campaign
history (events, bytes, workflow tasks; per continue-as-new run); a sample of child call histories; worker RSS.
Baseline in the same run: ``--baseline`` calls started directly with the typed call client (no campaign, same
concurrency, no rate limit), the same figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from bench._support import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    BIN,
    Child,
    Stack,
    load_average,
    rss_mb,
    run_then_exit,
    stack,
    table,
)
from bench.campaign_figures import History, call_starts, child_sample, dial_figures, history
from models.call_contract import outbound_call
from models.campaigns import campaign_workflow_id
from models.enums import MediaMode
from models.tables import new_id
from tests.support.proc_stats import CpuMeter
from tests.twilio_standin import TwilioStandIn
from tests.twilio_standin.dialing import CallScript
from workflows.call_client import CallClient

DIAL_KEYS = ["dials", "dials/s", "max in 1 s", "dial path", "max live"]


async def start_api(bench: Stack, within: float = 180.0) -> Child:
    """``telephony api``, given longer than ``Stack.start_api`` to come up: it loads the voice models, slowly on a
    busy 2-core machine."""
    child = bench.spawn("api", [str(BIN / "telephony"), "api", "--data-dir", str(bench.dir)])
    deadline = time.monotonic() + within
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            if child.proc.poll() is not None:
                raise RuntimeError(f"the API exited: see {bench.dir / 'api.log'}")
            try:
                if (await http.get(f"{bench.api_url}/healthz")).status_code == 200:
                    return child
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"the API did not start within {within:.0f} s")


async def sample_rss(pid: int, peak: list[float], stop: asyncio.Event) -> None:
    proc = Path(f"/proc/{pid}")
    while not stop.is_set() and proc.exists():  # noqa: ASYNC240 (procfs: no disk)
        peak[0] = max(peak[0], rss_mb(pid))
        await asyncio.sleep(0.5)


async def timed(phase: Callable[[], Awaitable[None]], meter: CpuMeter) -> tuple[float, dict[str, float]]:
    t0 = time.monotonic()
    await phase()
    return time.monotonic() - t0, meter.spent()


def per_dial_ms(cpu: dict[str, float], dials: int) -> list[str]:
    return [f"{1000 * cpu[name] / max(1, dials):.0f}" for name in cpu]


async def main(args: argparse.Namespace) -> None:
    contacts = 10_000 if args.full else args.contacts
    async with TwilioStandIn({ACCOUNT_SID: AUTH_TOKEN}) as standin:
        standin.default_script = CallScript("answered", ring_seconds=0.3, talk_seconds=args.talk)
        async with stack("campaign", twilio_api_base_url=standin.url) as bench:
            api = await start_api(bench)
            worker = bench.start_worker()
            line = await bench.line("stream")
            standin.add_incoming(ACCOUNT_SID, line.e164)
            await asyncio.sleep(3)
            idle = rss_mb(worker.pid)
            peak = [idle]
            stop = asyncio.Event()
            sampler = asyncio.create_task(sample_rss(worker.pid, peak, stop))
            db = bench.dir / "telephony.db"
            pids = {"worker": worker.pid, "temporal": bench.children[0].pid, "api": api.pid, "stand-in": os.getpid()}
            started_load = load_average()
            print(f"# {started_load}; worker idle RSS {idle:.0f} MB")

            # ---- baseline: calls started directly, same concurrency, no rate limit
            calls = CallClient(bench.client, bench.settings.task_queue)
            gate = asyncio.Semaphore(args.concurrency)
            base_numbers = {f"+1628{n:07d}" for n in range(args.baseline)}
            number_id = await _number_id(bench.api_url, bench.admin_key, line.space_id, line.e164)

            async def direct(to: str) -> None:
                async with gate:
                    start = outbound_call(
                        call_id=new_id("calls"), space_id=line.space_id, phone_number_id=number_id,
                        media_mode=MediaMode.STREAM, from_number=line.e164, to_number=to, agent_id=line.agent_id,
                    )  # fmt: skip
                    ref = await calls.start(start)
                    assert ref is not None
                    await ref.handle.result()

            async def baseline() -> None:
                await asyncio.gather(*(direct(n) for n in sorted(base_numbers)))

            base_took, base_cpu = await timed(baseline, CpuMeter(pids))
            base = dial_figures(standin, base_numbers, call_starts(db, line.space_id))
            base_peak = peak[0]
            print(f"# baseline: {base['dials']} calls in {base_took:.0f} s ({base['dials/s']}/s); {load_average()}")

            # ---- the campaign
            numbers = [f"+1629{n:07d}" for n in range(contacts)]
            detail: dict[str, Any] = {}
            campaign_id = ""

            async def campaign() -> None:
                nonlocal detail, campaign_id
                detail, campaign_id = await _run_campaign(bench, line.space_id, line.e164, numbers, worker, args)

            took, cpu = await timed(campaign, CpuMeter(pids))
            stop.set()
            await sampler
            run = dial_figures(standin, set(numbers), call_starts(db, line.space_id))
            own = await history(bench.client, campaign_workflow_id(line.space_id, campaign_id))
            children = await child_sample(bench.client, campaign_id)
            ended_load = load_average()
    _report(args, contacts, base, base_took, base_cpu, base_peak, run, took, cpu, peak[0], idle, own, children, detail)
    print(f"load: at start {started_load}; at the end {ended_load}")


async def _run_campaign(
    bench: Stack, space_id: str, e164: str, numbers: list[str], worker: Child, args: argparse.Namespace
) -> tuple[dict[str, Any], str]:
    csv_text = "phone,name\n" + "".join(f"{n},contact {i}\n" for i, n in enumerate(numbers))
    limits = {"max_concurrent": args.concurrency, "calls_per_second": args.cps, "max_attempts": 1}
    settings = {"name": "bench", "from_numbers": [e164], "limits": limits}
    base_url = f"{bench.api_url}/v1/spaces/{space_id}/campaigns"
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {bench.admin_key}"}, timeout=600) as http:
        t0 = time.monotonic()
        created = await http.post(
            f"{base_url}/upload",
            files={"file": ("contacts.csv", csv_text.encode(), "text/csv")},
            data={"settings": json.dumps(settings)},
        )
        created.raise_for_status()
        campaign_id = created.json()["campaign"]["id"]
        print(f"# campaign {campaign_id}: {len(numbers)} contacts uploaded in {time.monotonic() - t0:.1f} s")
        t0, last, cancelled = time.monotonic(), 0.0, False
        while True:
            if worker.proc.poll() is not None:
                raise RuntimeError(f"the worker exited ({worker.proc.returncode}): see {bench.dir}")
            answer = await http.get(f"{base_url}/{campaign_id}")
            if answer.status_code != 200:
                await asyncio.sleep(1)
                continue
            detail: dict[str, Any] = answer.json()
            if detail["status"] in ("completed", "cancelled"):
                return detail, campaign_id
            elapsed = time.monotonic() - t0
            if args.max_minutes and elapsed > 60 * args.max_minutes and not cancelled:
                print(f"# {args.max_minutes} min passed: cancelling (calls in progress hung up)")
                await http.post(f"{base_url}/{campaign_id}/cancel", json={"hang_up": True})
                cancelled = True
            if time.monotonic() - last > 15:
                p = detail.get("progress") or {}
                print(f"# {elapsed:.0f} s: {p.get('placed')} placed, {p.get('in_progress')} live, "
                      f"rate {p.get('current_rate')}/s; {load_average()}")  # fmt: skip
                last = time.monotonic()
            await asyncio.sleep(1)


def _report(
    args: argparse.Namespace,
    contacts: int,
    base: dict[str, str],
    base_took: float,
    base_cpu: dict[str, float],
    base_peak: float,
    run: dict[str, str],
    took: float,
    cpu: dict[str, float],
    peak: float,
    idle: float,
    own: History,
    children: History,
    detail: dict[str, Any],
) -> None:
    dials, base_dials = int(run["dials"]), int(base["dials"])
    print()
    print(
        f"campaign: {contacts} contacts, max concurrency {args.concurrency}, CPS limit {args.cps}, talk {args.talk} s"
    )
    print(
        table(
            ["", *DIAL_KEYS, "wall s", "worker peak RSS MB"],
            [
                ["baseline: direct, no limit", *(base[k] for k in DIAL_KEYS), f"{base_took:.0f}", f"{base_peak:.0f}"],
                [f"campaign (CPS {args.cps})", *(run[k] for k in DIAL_KEYS), f"{took:.0f}", f"{peak:.0f}"],
            ],
        )
    )  # fmt: skip
    print("\nCPU per dial (ms), by process")
    print(
        table(
            ["", *cpu],
            [["baseline", *per_dial_ms(base_cpu, base_dials)], ["campaign", *per_dial_ms(cpu, dials)]],
        )
    )
    t = own.total
    extra = 1000 * (cpu["worker"] / max(1, dials) - base_cpu["worker"] / max(1, base_dials))
    print(
        f"\ncampaign scheduling per dial: {1000 * t.task_seconds / max(1, dials):.1f} ms of campaign workflow-task "
        f"time (local activities included), {t.tasks / max(1, dials):.2f} tasks, waiting "
        f"{1000 * t.wait_seconds / max(1, dials):.0f} ms in the task queue; worker CPU {extra:+.0f} ms per dial "
        f"above a directly started call"
    )
    print(
        table(
            ["campaign run", "events", "KB", "tasks", "task s", "timed out", "dials"],
            [
                [i + 1, r.events, f"{r.bytes / 1024:.0f}", r.tasks, f"{r.task_seconds:.1f}", r.timeouts, r.children]
                for i, r in enumerate([*own.runs, t])
            ],
        ).replace(f"\n{len(own.runs) + 1} ", "\nall ")
    )  # fmt: skip
    print(
        f"history per dial: {t.events / max(1, dials):.1f} events, {t.bytes / max(1, dials):.0f} B "
        f"({t.bytes / max(1, contacts):.0f} B per contact)"
    )
    c, n = children.total, max(1, len(children.runs))
    print(
        f"child calls (sample of {len(children.runs)}): {c.events / n:.0f} events, {c.bytes / n / 1024:.1f} KB, "
        f"{c.tasks / n:.1f} workflow tasks taking {1000 * c.task_seconds / n:.0f} ms in all after "
        f"{1000 * c.wait_seconds / n:.0f} ms in the task queue, "
        f"{c.timeouts / n:.2f} timed out, per call"
    )
    progress = detail["progress"]
    print(
        f"outcomes: {progress['answered']} answered, {progress['failed']} failed, {progress['cancelled']} cancelled, "
        f"{progress['remaining']} remaining; worker RSS idle {idle:.0f} MB, peak {peak:.0f} MB"
    )
    rate = (dials - 1) / took if dials > 1 else float("nan")
    print(f"at {rate:.2f} dials/s (upload to the end), 10,000 contacts take {10_000 / rate / 60:.0f} min")


async def _number_id(api_url: str, key: str, space_id: str, e164: str) -> str:
    async with httpx.AsyncClient(base_url=api_url, headers={"Authorization": f"Bearer {key}"}) as http:
        numbers = (await http.get(f"/v1/spaces/{space_id}/phone-numbers", params={"limit": 200})).json()["data"]
    return str(next(n["id"] for n in numbers if n["e164"] == e164))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=1000)
    parser.add_argument("--full", action="store_true", help="10,000 contacts (the issue's size)")
    parser.add_argument("--max-concurrency", "--concurrency", dest="concurrency", type=int, default=100)
    parser.add_argument("--cps", type=float, default=10.0)
    parser.add_argument("--talk", type=float, default=2.0, help="seconds each answered call lasts")
    parser.add_argument("--baseline", type=int, default=100, help="calls started directly for the baseline")
    parser.add_argument("--max-minutes", type=float, default=0.0, help="cancel the campaign after this long")
    parsed = parser.parse_args()
    run_then_exit(lambda: main(parsed))
