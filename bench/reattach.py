"""Re-attach: from a media process's death to the caller hearing the agent again.

    .venv/bin/python -m bench.reattach [--trials 20] [--baseline-trials 5]

Set-up as ``bench.voice_capacity`` (``tests.support.media_processes.media_line``): Temporal dev server, the API
and worker in this process behind the carrier stand-in, three ``telephony media`` processes. Each trial places a
call, opens its stream on one media process and, as soon as the greeting's first audio arrives (the agent is
mid-turn), kills that process with SIGKILL. The call's workflow notices (its ``carry_media`` heartbeat times out:
``MEDIA_HEARTBEAT_TIMEOUT_SECONDS``), redirects the live call through the carrier's REST API; the stand-in records
the redirect's TwiML and this script, playing Twilio, opens the new stream on another media process at once.
Measured: kill → redirect received by the carrier (detection + the reconnect activity), redirect → the first audio
of the resumed agent ("sorry, where were we"), and the sum, the gap the caller hears (p50/p99). A real carrier
adds its own time to fetch the TwiML and open the new stream. A fresh process replaces the killed one between
trials.

Baseline measured in the same run: the same hand-over without detection, by SIGTERM to a media process whose
drain limit is 0 s (``TELEPHONY_MEDIA_DRAIN_SECONDS=0``: its calls are handed over at once). The difference between
the two is the cost of noticing a death by heartbeat.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
    stream_parameters,
    stream_to,
)
from tests.support.media_stream_client import TwilioMediaStream
from tests.support.temporal import start_dev_server
from tests.twilio_standin import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TwilioStandIn

WITHIN = 60.0


@dataclass
class Trial:
    detected_s: float  # kill → the carrier received the redirect
    resumed_s: float  # redirect → first audio of the resumed agent

    @property
    def total_s(self) -> float:
        return self.detected_s + self.resumed_s


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

    async def take(self) -> MediaProcess:
        while not self._ready:
            done = await self._starting.pop(0)
            self._ready.append(done)
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


async def trial(line: Line, pool: Pool, caller: int, kill: bool) -> Trial:
    record, answer = await line.carrier.incoming_call(line.e164, f"+1415555{caller:04d}")
    doomed, spare = await pool.take(), await pool.take()
    async with stream_to(doomed, stream_parameters(answer.text)) as phone:
        await phone.start()
        await first_audio(phone)  # the greeting is being spoken: the agent is mid-turn
        killed_at = time.monotonic()
        if kill:
            doomed.kill9()
        else:
            doomed.terminate()
        redirects = line.carrier.calls[record.sid].redirects
        while not redirects:
            if time.monotonic() - killed_at > WITHIN:
                raise TimeoutError("no redirect")
            await asyncio.sleep(0.005)
        redirected_at = time.monotonic()
        twiml = redirects[-1]["Twiml"]
        with contextlib.suppress(Exception):  # the carrier ends the old stream as it follows the new TwiML
            await phone.stop()
    pool.replace()
    async with stream_to(spare, stream_parameters(twiml)) as moved:
        await moved.start()
        heard_at = await first_audio(moved)
        await asyncio.sleep(0.3)
        await moved.stop()
    pool.give_back(spare)
    if not kill:
        await asyncio.to_thread(doomed.process.wait, WITHIN)
    return Trial(redirected_at - killed_at, heard_at - redirected_at)


def summary(name: str, trials: list[Trial]) -> list[object]:
    def ms(values: list[float], q: float) -> str:
        return f"{pct(values, q) * 1000:.0f}"

    totals = [t.total_s for t in trials]
    detected = [t.detected_s for t in trials]
    resumed = [t.resumed_s for t in trials]
    return [name, len(trials), ms(totals, 50), ms(totals, 99), ms(detected, 50), ms(detected, 99), ms(resumed, 50)]


async def main(args: argparse.Namespace) -> None:
    print(
        f"# re-attach after kill -9: {args.trials} trials, baseline SIGTERM hand-over: {args.baseline_trials}; "
        f"heartbeat every {MEDIA_HEARTBEAT_INTERVAL_SECONDS} s, timeout {MEDIA_HEARTBEAT_TIMEOUT_SECONDS} s; "
        f"{load_average()}",
        flush=True,
    )
    env = await start_dev_server()
    processes: list[MediaProcess] = []
    killed: list[Trial] = []
    drained: list[Trial] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-reattach-") as tmp:
            drain = {"TELEPHONY_MEDIA_DRAIN_SECONDS": "0"}
            async with (
                TwilioStandIn({TEST_ACCOUNT_SID: TEST_AUTH_TOKEN}) as carrier,
                media_line(env, Path(tmp), carrier, processes, count=3, extra_env=drain) as line,
            ):
                children = media_env(line.stack, env, Path(tmp) / "media-data") | drain
                pool = Pool(line, children, Path(tmp) / "media-cwd")
                plan = [True] * args.trials + [False] * args.baseline_trials
                try:
                    for n, kill in enumerate(plan):
                        result = await trial(line, pool, 1000 + n, kill)
                        (killed if kill else drained).append(result)
                        print(
                            f"  {'kill -9' if kill else 'SIGTERM'} {n + 1:2d}: caller hears the agent again after "
                            f"{result.total_s * 1000:5.0f} ms (redirect after {result.detected_s * 1000:5.0f} ms)",
                            flush=True,
                        )
                finally:
                    pool.cancel()
    finally:
        for media in processes:
            media.close()
        await env.shutdown()
    header = ["hand-over", "trials", "gap p50 ms", "gap p99 ms", "to redirect p50", "to redirect p99", "resume p50"]
    print()
    print(table(header, [summary("kill -9", killed), summary("SIGTERM, drain 0 s (baseline)", drained)]))
    print(f"# goal: gap <= 3000 ms; {load_average()}")


def cli(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20, help="kill -9 trials (default 20)")
    parser.add_argument("--baseline-trials", type=int, default=5, help="SIGTERM hand-over trials (default 5)")
    args = parser.parse_args(argv)
    run_then_exit(lambda: main(args))


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cli()
