"""Campaign: N contacts dialled by one ``CampaignWorkflow`` at max concurrency 100 against the Twilio stand-in.

    .venv/bin/python -m bench.campaign [--contacts 1000] [--full] [--concurrency 100] [--cps 10] [--talk 2]
                                       [--baseline 300]

``--full`` is the issue's size, 10,000 contacts. The stack is real processes: Temporal dev server (SQLite WAL),
``telephony api`` (the stand-in's status webhooks go to it over HTTP) and ``telephony worker``; the stand-in runs
in this process and plays every call out (ring 0.3 s, answer, talk ``--talk`` s, hang up). The campaign is
created by the REST CSV upload, as an operator would.

Printed: dials/s sustained at the carrier vs the CPS limit and the most dials in any one second; the dial path
(child call started → the carrier's ``POST Calls.json``) p50/p99 per call; concurrent calls at the carrier (max);
campaign history (runs, events, bytes over every continue-as-new run); worker RSS idle and peak. Baseline in the
same run: ``--baseline`` calls started directly with the typed call client (no campaign, same concurrency, no
rate limit), the same figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import time
from datetime import datetime
from pathlib import Path

import httpx

from bench._support import ACCOUNT_SID, AUTH_TOKEN, BIN, Stack, exit_now, load_average, rss_mb, stack, summary_ms, table
from models.call_contract import outbound_call
from models.campaigns import campaign_workflow_id
from models.enums import MediaMode
from models.tables import new_id
from tests.twilio_standin import TwilioStandIn
from tests.twilio_standin.dialing import CallScript, max_in_one_second, max_simultaneous
from workflows.call_client import CallClient


def call_starts(db: Path, space_id: str) -> dict[str, float]:
    """Each outbound call's start (its workflow's clock at RINGING), by the number called."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT to_number, created_at FROM calls WHERE space_id = ?", (space_id,)).fetchall()
    return {to: datetime.fromisoformat(str(at)).timestamp() for to, at in rows}


def figures(standin: TwilioStandIn, numbers: set[str], starts: dict[str, float]) -> dict[str, str]:
    dials = {
        r.form["To"]: r.received_at.timestamp()
        for r in standin.requests_for("create_call")
        if r.form.get("To") in numbers
    }
    times = sorted(dials.values())
    span = (times[-1] - times[0]) if len(times) > 1 else float("nan")
    path = [dials[n] - starts[n] for n in dials if n in starts]
    records = [c for c in standin.calls.values() if c.to in numbers]
    return {
        "dials": str(len(times)),
        "dials/s": f"{(len(times) - 1) / span:.2f}" if len(times) > 1 else "n/a",
        "max in 1 s": str(max_in_one_second(times)),
        "dial path": summary_ms(path),
        "max live": str(max_simultaneous(records)),
    }


async def history(client: object, workflow_id: str) -> tuple[int, int, int]:
    """Runs, events and bytes of every run of the campaign's workflow (continue-as-new included)."""
    from temporalio.client import Client

    assert isinstance(client, Client)
    runs = events = size = 0
    async for execution in client.list_workflows(f"WorkflowId = '{workflow_id}'"):
        runs += 1
        handle = client.get_workflow_handle(workflow_id, run_id=execution.run_id)
        async for event in handle.fetch_history_events():
            events += 1
            size += event.ByteSize()
    return runs, events, size


async def start_api(bench: Stack, within: float = 180.0) -> None:
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
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"the API did not start within {within:.0f} s")


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


async def sample_rss(pid: int, peak: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set() and alive(pid):
        peak[0] = max(peak[0], rss_mb(pid))
        await asyncio.sleep(0.5)


async def main(args: argparse.Namespace) -> None:
    contacts = 10_000 if args.full else args.contacts
    async with TwilioStandIn({ACCOUNT_SID: AUTH_TOKEN}) as standin:
        standin.default_script = CallScript("answered", ring_seconds=0.3, talk_seconds=args.talk)
        async with stack("campaign", twilio_api_base_url=standin.url) as bench:
            await start_api(bench)
            worker = bench.start_worker()
            line = await bench.line("stream")
            standin.add_incoming(ACCOUNT_SID, line.e164)
            await asyncio.sleep(3)
            idle = rss_mb(worker.pid)
            peak = [idle]
            stop = asyncio.Event()
            sampler = asyncio.create_task(sample_rss(worker.pid, peak, stop))
            db = bench.dir / "telephony.db"
            print(f"# {load_average()}; worker idle RSS {idle:.0f} MB")

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

            t0 = time.monotonic()
            await asyncio.gather(*(direct(n) for n in sorted(base_numbers)))
            base_took = time.monotonic() - t0
            base = figures(standin, base_numbers, call_starts(db, line.space_id))
            base_peak = peak[0]

            # ---- the campaign
            numbers = [f"+1629{n:07d}" for n in range(contacts)]
            csv_text = "phone,name\n" + "".join(f"{n},contact {i}\n" for i, n in enumerate(numbers))
            settings = {
                "name": "bench",
                "from_numbers": [line.e164],
                "limits": {"max_concurrent": args.concurrency, "calls_per_second": args.cps, "max_attempts": 1},
            }
            headers = {"Authorization": f"Bearer {bench.admin_key}"}
            base_url = f"{bench.api_url}/v1/spaces/{line.space_id}/campaigns"
            async with httpx.AsyncClient(headers=headers, timeout=600) as http:
                t0 = time.monotonic()
                created = await http.post(
                    f"{base_url}/upload",
                    files={"file": ("contacts.csv", csv_text.encode(), "text/csv")},
                    data={"settings": json.dumps(settings)},
                )
                created.raise_for_status()
                upload_took = time.monotonic() - t0
                campaign_id = created.json()["campaign"]["id"]
                print(f"# campaign {campaign_id}: {contacts} contacts uploaded in {upload_took:.1f} s")
                t0 = time.monotonic()
                last = 0.0
                while True:
                    if worker.proc.poll() is not None:
                        raise RuntimeError(f"the worker exited ({worker.proc.returncode}): see {bench.dir}")
                    answer = await http.get(f"{base_url}/{campaign_id}")
                    if answer.status_code != 200:
                        await asyncio.sleep(1)
                        continue
                    detail = answer.json()
                    if detail["status"] in ("completed", "cancelled"):
                        break
                    if time.monotonic() - last > 15:
                        p = detail.get("progress") or {}
                        print(
                            f"# {p.get('placed')} placed, {p.get('in_progress')} live, rate {p.get('current_rate')}/s"
                        )
                        last = time.monotonic()
                    await asyncio.sleep(1)
                took = time.monotonic() - t0
            stop.set()
            await sampler
            run = figures(standin, set(numbers), call_starts(db, line.space_id))
            runs, events, size = await history(bench.client, campaign_workflow_id(line.space_id, campaign_id))
            progress = detail["progress"]

    print()
    print(
        f"campaign: {contacts} contacts, max concurrency {args.concurrency}, CPS limit {args.cps}, talk {args.talk} s"
    )
    keys = ["dials", "dials/s", "max in 1 s", "dial path", "max live"]
    print(
        table(
            ["", *keys, "wall s", "worker peak RSS MB"],
            [
                ["baseline: direct starts, no limit", *(base[k] for k in keys), f"{base_took:.0f}", f"{base_peak:.0f}"],
                [f"campaign (CPS {args.cps})", *(run[k] for k in keys), f"{took:.0f}", f"{peak[0]:.0f}"],
            ],
        )
    )
    print(
        f"outcomes: {progress['answered']} answered, {progress['failed']} failed, {progress['remaining']} remaining; "
        f"history: {runs} runs, {events} events, {size / 1024:.0f} KB ({size / max(1, contacts):.0f} B per contact); "
        f"worker RSS idle {idle:.0f} MB, peak {peak[0]:.0f} MB"
    )
    print(load_average())


async def _number_id(api_url: str, key: str, space_id: str, e164: str) -> str:
    async with httpx.AsyncClient(base_url=api_url, headers={"Authorization": f"Bearer {key}"}) as http:
        numbers = (await http.get(f"/v1/spaces/{space_id}/phone-numbers", params={"limit": 200})).json()["data"]
    return str(next(n["id"] for n in numbers if n["e164"] == e164))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=1000)
    parser.add_argument("--full", action="store_true", help="10,000 contacts (the issue's size)")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--cps", type=float, default=10.0)
    parser.add_argument("--talk", type=float, default=2.0, help="seconds each answered call lasts")
    parser.add_argument("--baseline", type=int, default=300, help="calls started directly for the baseline")
    asyncio.run(main(parser.parse_args()))
    exit_now(0)
