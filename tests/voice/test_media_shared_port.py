"""Several ``telephony media`` processes share one port (``TELEPHONY_MEDIA_REUSE_PORT``, what ``telephony dev
--media-processes N`` sets): the kernel spreads new connections over them, and one that drains (SIGTERM) stops
listening, so new streams reach its siblings instead of being refused, while the socket it still carries goes on
until it ends; then it exits 0."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from websockets.asyncio.client import connect

from tests.support.media_processes import READY_TIMEOUT, Line, MediaProcess, media_env, media_line
from tests.support.postgres import free_port
from tests.twilio_standin import TwilioStandIn
from workers.cli import build_parser, dev_settings
from workers.dev import child_env


@pytest.fixture
def processes() -> Iterator[list[MediaProcess]]:
    started: list[MediaProcess] = []
    yield started
    for process in started:
        process.close()
        print(f"--- {process.log.name} (exit {process.process.returncode})\n{process.output()[-3000:]}")


@pytest.fixture
async def line(
    temporal_env: WorkflowEnvironment, tmp_path: Path, twilio_standin: TwilioStandIn, processes: list[MediaProcess]
) -> AsyncIterator[Line]:
    async with media_line(temporal_env, tmp_path, twilio_standin, processes, count=0) as line:
        yield line


async def _health(url: str) -> dict[str, int | str] | None:
    """One /healthz over a new connection (the kernel picks a listening process per connection)."""
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(url)
    except httpx.HTTPError:
        return None
    assert response.status_code == 200, response.text
    answer: dict[str, int | str] = response.json()
    return answer


async def _by_pid(url: str, want: set[int]) -> dict[int, dict[str, int | str]]:
    """The latest health of each process until every pid in ``want`` has answered."""
    seen: dict[int, dict[str, int | str]] = {}
    deadline = time.monotonic() + READY_TIMEOUT
    while not want <= seen.keys():
        assert time.monotonic() < deadline, f"only {sorted(seen)} answered on the shared port"
        answer = await _health(url)
        if answer is None:
            await asyncio.sleep(0.5)
        else:
            seen[int(answer["pid"])] = answer
    return seen


@pytest.mark.slow
async def test_media_processes_share_a_port_and_a_draining_one_stops_taking_streams(
    line: Line, temporal_env: WorkflowEnvironment, tmp_path: Path, processes: list[MediaProcess]
) -> None:
    port = free_port()
    env = media_env(line.stack, temporal_env, tmp_path / "shared-data") | {"TELEPHONY_MEDIA_REUSE_PORT": "1"}
    pair = [MediaProcess.start(env, tmp_path / "media-cwd", f"shared-{n}", port=port) for n in (1, 2)]
    processes += pair
    url = pair[0].health_url
    await _by_pid(url, {m.process.pid for m in pair})  # both loaded and listening on the one port

    async with connect(pair[0].ws_url):  # a stream (not started yet) on one of them
        health = await _by_pid(url, {m.process.pid for m in pair})
        holder = next(m for m in pair if health[m.process.pid]["sockets"] == 1)
        sibling = next(m for m in pair if m is not holder)
        holder.terminate()
        await asyncio.sleep(1.0)  # the signal is handled on the process's loop
        answers = [await _health(url) for _ in range(20)]
        # None refused, none 503: every new connection reaches the sibling.
        assert {int(a["pid"]) for a in answers if a is not None} == {sibling.process.pid}, answers
        assert holder.process.poll() is None  # it still carries its socket
    assert await asyncio.to_thread(holder.process.wait, 60) == 0, holder.output()[-3000:]
    assert sibling.process.poll() is None


def test_dev_runs_several_media_processes_on_one_port(tmp_path: Path) -> None:
    args = build_parser().parse_args(["dev", "--data-dir", str(tmp_path), "--media-processes", "2"])
    settings = dev_settings(args.data_dir, args.api_port, args.temporal_port, args.media_port, args.media_processes)
    assert settings.media_processes == 2
    assert child_env(settings)["TELEPHONY_MEDIA_REUSE_PORT"] == "1"
    single = dev_settings(str(tmp_path), None, 7233)
    assert child_env(single)["TELEPHONY_MEDIA_REUSE_PORT"] == "0"
    for bad in ("0", "65", "two"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["dev", "--media-processes", bad])
