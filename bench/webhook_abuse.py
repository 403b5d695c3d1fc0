"""Unauthenticated abuse of the webhook path, against ``telephony api`` as production runs it: ``/healthz``
latency alone (baseline) and while forged Twilio webhooks (large forms naming an AccountSid that four spaces
share, bad signatures) and 100 MB bodies arrive, beside the API's RSS.

    .venv/bin/python -m bench.webhook_abuse [--seconds 10] [--attackers 8]

Before the issue 7 fixes the forged forms were verified on the event loop, once per account sharing the SID,
over bodies of any size: eight in parallel stalled ``/healthz`` for 18 s and a 100 MB POST grew the API by
~400 MB. Now bodies stop at 64 KiB (413), at most four accounts are tried, and the HMACs run in a thread.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import httpx

from bench._support import ACCOUNT_SID, exit_now, load_average, rss_mb, stack, summary_ms, table

FORM = "application/x-www-form-urlencoded"


async def _poll_healthz(http: httpx.AsyncClient, url: str, until: float) -> list[float]:
    latencies = []
    while time.perf_counter() < until:
        started = time.perf_counter()
        response = await http.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"/healthz answered {response.status_code}")
        latencies.append(time.perf_counter() - started)
        await asyncio.sleep(0.02)
    return latencies


async def _forge(http: httpx.AsyncClient, url: str, until: float, statuses: list[int]) -> None:
    form = {
        "CallSid": "CA" + "0" * 32,
        "AccountSid": ACCOUNT_SID,
        "CallStatus": "completed",
        "Padding": "p" * 60_000,
    }
    body = urlencode(form)
    while time.perf_counter() < until:
        headers = {"X-Twilio-Signature": "A" * 27 + "=", "content-type": FORM}
        statuses.append((await http.post(url, content=body, headers=headers)).status_code)


async def _flood(http: httpx.AsyncClient, url: str, until: float, statuses: list[int]) -> None:
    """100 MB bodies streamed without a length."""

    async def hundred_mb() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"a" * (1024 * 1024)

    while time.perf_counter() < until:
        try:
            response = await http.post(url, content=hundred_mb(), headers={"content-type": FORM})
            statuses.append(response.status_code)
        except httpx.TransportError:
            statuses.append(0)  # the server answered 413 and closed while we were still sending


async def main(args: argparse.Namespace) -> None:
    async with stack("abuse") as bench:
        api = await bench.start_api()
        for _ in range(4):  # four spaces connected the same carrier account SID
            await bench.line("stream")
        healthz = f"{bench.api_url}/healthz"
        status = f"{bench.api_url}/webhooks/twilio/status"
        rows = []
        async with httpx.AsyncClient(timeout=60) as http:
            await _poll_healthz(http, healthz, time.perf_counter() + 1)  # warm-up
            rss_before = rss_mb(api.pid)
            for name, attack in (
                ("baseline: nothing else", None),
                ("forged 60 KB forms", _forge),
                ("100 MB bodies", _flood),
            ):
                until = time.perf_counter() + args.seconds
                statuses: list[int] = []
                attackers = [attack(http, status, until, statuses) for _ in range(args.attackers)] if attack else []
                polling = asyncio.create_task(_poll_healthz(http, healthz, until))
                await asyncio.gather(*attackers)
                latencies = await polling
                answered = sorted(set(statuses))
                rows.append(
                    (
                        name,
                        summary_ms(latencies),
                        f"max {max(latencies) * 1000:7.1f} ms",
                        f"{len(statuses) / args.seconds:6.1f}/s",
                        answered,
                        f"{rss_mb(api.pid):6.0f} MB",
                    )
                )
        print(f"API RSS before {rss_before:.0f} MB; {args.attackers} attackers; {load_average()}")
        print(table(["/healthz while", "latency", "", "attack requests", "answered", "API RSS after"], rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--attackers", type=int, default=8)
    asyncio.run(main(parser.parse_args()))
    exit_now()
