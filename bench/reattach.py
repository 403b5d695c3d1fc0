"""Re-attach: from a media process's death to the caller hearing the agent again.

    .venv/bin/python -m bench.reattach [--trials 20] [--baseline-trials 5]

Set-up as ``bench.voice_capacity`` (``tests.support.media_processes.media_line``): Temporal dev server, the API
and worker in this process behind the carrier stand-in, three ``telephony media`` processes. The stand-in plays
Twilio (``tests/twilio_standin/streams.py``): it opens each call's stream where the TwiML says, and when a stream's
socket closes mid-call it requests the ``<Connect action>`` URL and follows the answer at once, as Twilio does; it
follows REST redirects the same way. Each trial places a call, its first stream on one media process and, as soon
as the greeting's first audio arrives (the agent is mid-turn), kills that process; the next stream goes to
another (a spare, ready). A fresh process replaces the killed one; the next trial starts once it is ready (its
model loading would otherwise load the machine during the next measurement).

Three ways, in the same run:
- ``kill -9, <Connect action>``: the carrier tells the API the moment the socket closes; the workflow answers
  with the new stream in the action's answer (the designed path);
- ``kill -9, heartbeat only``: the stand-in ignores ``<Connect action>`` (a transport that does not call back):
  the workflow notices by the ``carry_media`` heartbeat's timeout (``MEDIA_HEARTBEAT_TIMEOUT_SECONDS``) and
  redirects the call through the carrier's REST API (the fallback, and the path before the action existed);
- ``SIGTERM, drain 0 s``: a media process whose drain limit is 0 hands its calls over at once (REST redirect,
  no detection to wait for).
Measured: kill → the carrier acts (action requested / redirect received), → the new stream is open (started), →
its first agent audio ("sorry, where were we"); the sum is the gap the caller hears (p50/p99). A real carrier
adds its network round trips.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench._support import load_average, pct, run_then_exit, table
from models.calls import MEDIA_HEARTBEAT_INTERVAL_SECONDS, MEDIA_HEARTBEAT_TIMEOUT_SECONDS
from tests.support.media_processes import (
    Line,
    MediaProcess,
    media_env,
    media_line,
)
from tests.support.media_stream_client import TwilioMediaStream
from tests.support.temporal import start_dev_server
from tests.twilio_standin import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TwilioStandIn

WITHIN = 60.0


@dataclass
class Trial:
    detected_s: float  # kill → the carrier requested the action / received the redirect
    connected_s: float  # → the new stream started
    spoke_s: float  # → first audio of the resumed agent

    @property
    def total_s(self) -> float:
        return self.detected_s + self.connected_s + self.spoke_s


async def first_audio(phone: TwilioMediaStream, within: float = WITHIN) -> float:
    deadline = time.monotonic() + within
    while not phone.segments:
        if time.monotonic() > deadline:
            raise TimeoutError("no agent audio in time")
        await asyncio.sleep(0.005)
    return phone.segments[0].first_audio_at


class Pool:
    """Ready media processes; a replacement for each one used up starts at once, in the background."""

    def __init__(self, line: Line, env: dict[str, str], cwd: Path) -> None:
        self._line, self._env, self._cwd = line, env, cwd
        self._ready: list[MediaProcess] = list(line.media)
        self._starting: list[asyncio.Task[MediaProcess]] = []
        self._made = len(line.media)

    async def settle(self) -> None:
        """Wait until every replacement is ready (no model loading during a measurement)."""
        while self._starting:
            self._ready.append(await self._starting.pop(0))

    async def take(self) -> MediaProcess:
        await self.settle()
        return self._ready.pop(0)

    def give_back(self, media: MediaProcess) -> None:
        self._ready.append(media)

    def cancel(self) -> None:
        for starting in self._starting:
            starting.cancel()

    def replace(self) -> None:
        self._made += 1
        media = MediaProcess.start(self._env, self._cwd, f"media-{self._made}")
        self._line.media.append(media)  # closed with the others

        async def ready() -> MediaProcess:
            await media.ready()
            return media

        self._starting.append(asyncio.create_task(ready()))


KILL_ACTION, KILL_HEARTBEAT, SIGTERM = "kill -9, <Connect action>", "kill -9, heartbeat only", "SIGTERM, drain 0 s"


async def trial(line: Line, pool: Pool, caller: int, way: str) -> Trial:
    carrier = line.carrier
    doomed, spare = await pool.take(), await pool.take()
    route = iter([doomed, spare])
    carrier.stream_router = lambda url: next(route).ws_url
    carrier.connect_actions = way != KILL_HEARTBEAT
    record, answer = await carrier.incoming_call(line.e164, f"+1415555{caller:04d}")
    phone = await carrier.connect_stream(record.sid, answer.text)
    await first_audio(phone)  # the greeting is being spoken: the agent is mid-turn
    killed_at = time.monotonic()
    if way == SIGTERM:
        doomed.terminate()
    else:
        doomed.kill9()
    moved = await carrier.next_stream(record.sid, after=1, within=WITHIN)
    acted_at = carrier.calls[record.sid].stream_moves[-1].at
    heard_at = await first_audio(moved)
    pool.replace()
    await asyncio.sleep(0.3)
    await carrier.hang_up(record.sid)
    pool.give_back(spare)
    if way == SIGTERM:
        await asyncio.to_thread(doomed.process.wait, WITHIN)
    return Trial(acted_at - killed_at, moved.started_at - acted_at, heard_at - moved.started_at)


def summary(name: str, trials: list[Trial]) -> list[object]:
    def ms(values: list[float], q: float) -> str:
        return f"{pct(values, q) * 1000:.0f}" if values else "-"

    totals = [t.total_s for t in trials]
    return [
        name,
        len(trials),
        ms(totals, 50),
        ms(totals, 99),
        ms([t.detected_s for t in trials], 50),
        ms([t.connected_s for t in trials], 50),
        ms([t.spoke_s for t in trials], 50),
    ]


async def main(args: argparse.Namespace) -> None:
    print(
        f"# re-attach: {args.trials} trials by kill -9 with <Connect action>, baselines in the same run: "
        f"{args.baseline_trials} by kill -9 with the heartbeat only (every {MEDIA_HEARTBEAT_INTERVAL_SECONDS} s, "
        f"timeout {MEDIA_HEARTBEAT_TIMEOUT_SECONDS} s) and {args.baseline_trials} by SIGTERM; {load_average()}",
        flush=True,
    )
    env = await start_dev_server()
    processes: list[MediaProcess] = []
    results: dict[str, list[Trial]] = {KILL_ACTION: [], KILL_HEARTBEAT: [], SIGTERM: []}
    # Interleaved, so the shared machine's load drifts over all three alike.
    plan = [KILL_ACTION] * args.trials
    for n in range(args.baseline_trials):
        plan.insert(min(len(plan), 2 * n * 2 + 1), KILL_HEARTBEAT)
        plan.insert(min(len(plan), 2 * n * 2 + 3), SIGTERM)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-reattach-") as tmp:
            drain = {"TELEPHONY_MEDIA_DRAIN_SECONDS": "0"}
            async with (
                TwilioStandIn({TEST_ACCOUNT_SID: TEST_AUTH_TOKEN}) as carrier,
                media_line(env, Path(tmp), carrier, processes, count=3, extra_env=drain) as line,
            ):
                children = media_env(line.stack, env, Path(tmp) / "media-data") | drain
                pool = Pool(line, children, Path(tmp) / "media-cwd")
                try:
                    for n, way in enumerate(plan):
                        result = await trial(line, pool, 1000 + n, way)
                        results[way].append(result)
                        print(
                            f"  {n + 1:2d} {way:26s}: caller hears the agent again after {result.total_s * 1000:5.0f} "
                            f"ms (carrier acts {result.detected_s * 1000:4.0f}, stream open "
                            f"{result.connected_s * 1000:4.0f}, agent speaks {result.spoke_s * 1000:4.0f})",
                            flush=True,
                        )
                finally:
                    pool.cancel()
    finally:
        for media in processes:
            media.close()
        await env.shutdown()
    header = ["way", "trials", "gap p50 ms", "gap p99 ms", "carrier acts p50", "stream open p50", "agent speaks p50"]
    print()
    print(table(header, [summary(way, trials) for way, trials in results.items()]))
    print(f"# goal: gap <= 3000 ms; {load_average()}")


def cli(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20, help="kill -9 trials with <Connect action> (default 20)")
    parser.add_argument("--baseline-trials", type=int, default=5, help="trials of each baseline (default 5)")
    args = parser.parse_args(argv)
    run_then_exit(lambda: main(args))


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cli()
