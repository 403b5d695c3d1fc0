"""SMS: an inbound message (signed Twilio webhook into ``telephony api``) -> SmsThreadWorkflow -> the agent's reply
handed to the carrier (the Twilio stand-in's Messages API), on one ``telephony worker``.

    .venv/bin/python -m bench.sms [--threads 200] [--rate 20] [--seconds 20] [--ramp 4,8,12,16] [--step 10]

Open loop: messages leave on a fixed schedule across ``--threads`` parties of one number, whatever the latency;
every reply takes a send slot from the number's pacer (``--number-rate``, ``--number-burst``). Latency = webhook
sent -> the reply created at the carrier. Figures: the threads' first messages (workflow starts); rising rates on
open threads until p99 passes 1 s (the highest rate under it is what one worker sustains); p50/p99 at ``--rate``,
and the same rate with the webhook skipped (the bench hands the message to the thread with the typed client: the
baseline, same run, same server). CPU per message of the worker, API and Temporal is printed beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from bench._support import ACCOUNT_SID, AUTH_TOKEN, Stack, exit_now, load_average, pct, rss_mb, stack, table
from models import sms as m
from tests.support.proc_stats import CpuMeter
from tests.twilio_standin import TwilioStandIn
from workflows.sms_client import SmsClient, Thread

# One question per phase, each with its own answer: a reply that comes late is never counted in the next phase.
TOPICS = ["hours", "parking", "address", "payment", "delivery", "returns", "warranty", "gifts", "careers", "events"]
KB = [{"title": t.title(), "content": f"The answer about {t} is number {n}."} for n, t in enumerate(TOPICS)]
P99_LIMIT_MS = 1000.0


class Replies(dict[str, Any]):
    """The stand-in's message store, noting when each message to a party is created (the reply's arrival)."""

    def __init__(self, on_reply: Callable[[str, str], None]) -> None:
        super().__init__()
        self._on_reply = on_reply

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        if value.direction == "outbound-api":
            self._on_reply(value.to, value.body)


class Clock:
    """Send times per party (FIFO) and the latencies of the replies matched to them."""

    def __init__(self) -> None:
        self.sent: dict[str, deque[float]] = {}
        self.latencies: list[float] = []
        self.expected = ""  # the answer of the current phase's question

    def start(self, party: str) -> None:
        self.sent.setdefault(party, deque()).append(time.perf_counter())

    def reply(self, party: str, body: str) -> None:
        queue = self.sent.get(party)
        if queue and body == self.expected:
            self.latencies.append(time.perf_counter() - queue.popleft())

    def outstanding(self) -> int:
        return sum(len(q) for q in self.sent.values())


async def setup(bench: Stack, standin: TwilioStandIn, rate: float, burst: int) -> tuple[str, str, str]:
    """A space with the stand-in's account, an agent with a knowledge base and an SMS number paced at ``rate``
    messages a second (``burst`` at once): (space, number id, number)."""
    admin = {"Authorization": f"Bearer {bench.admin_key}"}
    async with httpx.AsyncClient(base_url=bench.api_url, timeout=30) as http:

        async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            response = await http.post(path, json=body, headers=admin)
            if response.status_code != 201:
                raise RuntimeError(f"POST {path}: {response.status_code} {response.text}")
            created: dict[str, Any] = response.json()
            return created

        sms = {"messages_per_second": rate, "burst": burst}
        space = (await post("/v1/spaces", {"name": "bench sms", "call_settings": {"sms": sms}}))["id"]
        base = f"/v1/spaces/{space}"
        account = await post(
            f"{base}/carrier-accounts", {"name": "twilio", "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}
        )
        agent = await post(f"{base}/agents", {"name": "front desk", "knowledge_base": KB})
        e164 = "+14155557000"
        number = {"e164": e164, "carrier_account_id": account["id"], "agent_id": agent["id"], "sms_enabled": True}
        made = await post(f"{base}/phone-numbers", number)
    standin.add_incoming(ACCOUNT_SID, e164, SmsUrl=f"{bench.api_url}{m.WEBHOOK_SMS_PATH}")
    return space, made["id"], e164


async def polling(bench: Stack, within: float = 120.0) -> None:
    """Wait for the worker's "worker polling" line, so the first messages do not wait for its start-up."""
    log = bench.dir / "worker.log"
    deadline = time.monotonic() + within
    while "worker polling" not in (log.read_text(errors="replace") if log.exists() else ""):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the worker is not polling: see {log}")
        await asyncio.sleep(0.1)


Send = Callable[[str, str], Awaitable[None]]
phases = iter(range(len(TOPICS)))


async def run_at(send: Send, clock: Clock, parties: list[str], rate: float, seconds: float) -> tuple[int, list[float]]:
    """Send ``rate`` messages a second for ``seconds`` (round robin over ``parties``); wait for the replies.
    Returns (errors, reply latencies of this phase)."""
    phase = next(phases)
    question, clock.expected = f"{TOPICS[phase]}?", KB[phase]["content"]
    clock.latencies = []
    clock.sent.clear()
    count = int(rate * seconds)
    errors = 0
    tasks: list[asyncio.Task[None]] = []

    async def one(party: str) -> None:
        nonlocal errors
        clock.start(party)
        try:
            await send(party, question)
        except Exception as exc:  # counted and shown once, never fatal
            errors += 1
            clock.sent[party].pop()
            if errors == 1:
                print(f"# first error: {exc!r}")

    started = time.perf_counter()
    for i in range(count):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(parties[i % len(parties)])))
    await asyncio.gather(*tasks)
    for _ in range(1200):  # up to 60 s for the last replies
        if not clock.outstanding():
            break
        await asyncio.sleep(0.05)
    if clock.outstanding():
        print(f"# {clock.outstanding()} replies never came within 60 s")
        clock.sent.clear()
    return errors, list(clock.latencies)


def per_message(cpu: CpuMeter, messages: int) -> list[str]:
    """CPU milliseconds per message of each child over the phase: what the cores must supply per message whatever
    else runs on them (the 2 cores here are shared, so latencies swing with the load)."""
    return [f"{spent * 1000 / max(messages, 1):.0f}" for spent in cpu.lap().values()]


def row(name: str, rate: float, errors: int, latencies: list[float], cpu: CpuMeter) -> list[object]:
    ms = [x * 1000 for x in latencies]
    return [name, f"{rate:g}", len(ms), errors, f"{pct(ms, 50):.0f}", f"{pct(ms, 99):.0f}", *per_message(cpu, len(ms))]


async def main(args: argparse.Namespace) -> None:
    clock = Clock()
    async with TwilioStandIn({ACCOUNT_SID: AUTH_TOKEN}) as standin:
        standin.messages = Replies(clock.reply)
        async with stack("sms", twilio_api_base_url=standin.url) as bench:
            api = await bench.start_api()
            worker = bench.start_worker()
            space, number_id, e164 = await setup(bench, standin, args.number_rate, args.number_burst)
            await polling(bench)
            sms = SmsClient(bench.client, bench.settings.task_queue)
            parties = [f"+1415600{n:04d}" for n in range(args.threads)]
            sids = iter(range(10**9))

            async def via_webhook(party: str, question: str) -> None:
                _, response = await standin.incoming_sms(e164, party, question)
                if response.status_code != 200:
                    raise RuntimeError(f"webhook answered {response.status_code}")

            async def via_client(party: str, question: str) -> None:
                sid = f"SM{next(sids):032x}"
                await sms.deliver_inbound(Thread(space, number_id, e164, party), m.InboundSms(sid, question))

            rows: list[list[object]] = []
            temporal = bench.children[0].pid
            cpu = CpuMeter({"worker": worker.pid, "api": api.pid, "temporal": temporal})
            # Every thread's first message starts its workflow (measured apart), at the lowest ramp rate.
            opening = args.ramp[0]
            errors, lat = await run_at(via_webhook, clock, parties, opening, len(parties) / opening)
            rows.append(row("webhook, new threads", opening, errors, lat, cpu))
            # Rising rates on open threads until p99 passes the limit (each phase waits for its replies).
            sustained = 0.0
            for rate in args.ramp:
                errors, lat = await run_at(via_webhook, clock, parties, rate, args.step)
                rows.append(row("webhook, ramp", rate, errors, lat, cpu))
                if not lat or pct([x * 1000 for x in lat], 99) > P99_LIMIT_MS or errors:  # no reply: not sustained
                    break
                sustained = rate
            # The asked rate, through the API and, as the baseline, handed to the threads by the typed client.
            errors, lat = await run_at(via_webhook, clock, parties, args.rate, args.seconds)
            rows.append(row("webhook, open threads", args.rate, errors, lat, cpu))
            errors, lat = await run_at(via_client, clock, parties, args.rate, args.seconds)
            rows.append(row("baseline: typed client", args.rate, errors, lat, cpu))
            print()
            print(
                f"SMS inbound -> agent reply at the carrier: {args.threads} threads of one number (paced at "
                f"{args.number_rate:g}/s, burst {args.number_burst}), one worker, open loop"
            )
            cpu_columns = ["CPU ms/msg worker", "api", "temporal"]
            print(table(["path", "msg/s", "replies", "errors", "p50 ms", "p99 ms", *cpu_columns], rows))
            print(f"highest rate with p99 <= {P99_LIMIT_MS:.0f} ms on one worker: {sustained:g} messages/s")
            print(f"worker RSS {rss_mb(worker.pid):.0f} MB; carrier messages sent: {len(standin.messages)}")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the measured phases at --rate")
    parser.add_argument("--ramp", type=lambda s: [float(x) for x in s.split(",")], default=[4.0, 8.0, 12.0, 16.0])
    parser.add_argument("--step", type=float, default=10.0, help="seconds per ramp step")
    # Every reply leaves from the one number, so its pace (a short code's 100/s here) bounds the replies a second.
    parser.add_argument("--number-rate", type=float, default=100.0, help="the number's messages_per_second")
    parser.add_argument("--number-burst", type=int, default=20, help="the number's burst")
    return parser.parse_args()


if __name__ == "__main__":
    started = time.monotonic()
    asyncio.run(main(parse()))
    print(f"run time: {time.monotonic() - started:.0f} s; {load_average()}")
    exit_now(0)
