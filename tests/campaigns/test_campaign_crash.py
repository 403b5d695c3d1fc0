"""Crash test: the worker running a campaign is a real ``telephony worker`` process, killed with SIGKILL while
the campaign is dialling; a new worker process finishes the campaign and no contact is dialled twice (each
number reaches the LiveKit stand-in's ``CreateSIPParticipant`` exactly once)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path

import pytest
from livekit import api as lk
from temporalio.testing import WorkflowEnvironment

from models.campaigns import CampaignLimits
from models.db import create_engine, migrate, session_factory
from models.enums import CampaignStatus, ContactOutcome
from tests.campaigns.conftest import contact, contact_rows, start_campaign
from tests.conftest import unique_e164
from tests.livekit_standin import LiveKitStandIn
from tests.workflows.conftest import CallHarness
from tests.workflows.test_call_crash import WorkerProcess, worker_env
from workflows.campaign_client import CampaignClient

BUSY, FAILED = ContactOutcome.BUSY, ContactOutcome.FAILED


@pytest.mark.slow
async def test_kill_9_worker_while_dialling_dials_nobody_twice(
    temporal_env: WorkflowEnvironment, livekit_standin: LiveKitStandIn, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'telephony.db'}"
    await asyncio.to_thread(migrate, url)
    engine = create_engine(url)
    lk_api = lk.LiveKitAPI(livekit_standin.url, livekit_standin.api_key, livekit_standin.api_secret)
    queue = f"campaign-crash-{uuid.uuid4().hex[:8]}"
    env = worker_env(temporal_env, livekit_standin, tmp_path, url, queue)
    workers: list[WorkerProcess] = []
    try:
        sessions = session_factory(engine)
        calls = CallHarness(temporal_env.client, queue, sessions, livekit_standin, lk_api)
        first = WorkerProcess.start(env, tmp_path, "worker-1")
        workers.append(first)
        await first.wait_polling()
        line = await calls.with_trunk(await calls.new_line())
        numbers = [unique_e164() for _ in range(12)]
        livekit_standin.dial_outcomes.update({n: "busy" for n in numbers})  # each dial ends at once

        def dialled() -> Counter[str]:
            wanted = set(numbers)
            return Counter(
                d.sip_call_to for d in livekit_standin.calls("CreateSIPParticipant") if d.sip_call_to in wanted
            )

        ref = await start_campaign(
            sessions,
            CampaignClient(temporal_env.client, queue),
            space_id=line.space_id,
            e164s=[line.e164],
            contacts=[contact(n) for n in numbers],
            limits=CampaignLimits(max_concurrent=2, calls_per_second=2, max_attempts=1),
            continue_after_dials=5,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        while sum(dialled().values()) < 4:
            assert loop.time() < deadline, "the campaign did not start dialling"
            await asyncio.sleep(0.05)
        first.kill9()
        at_kill = sum(dialled().values())
        second = WorkerProcess.start(env, tmp_path, "worker-2")
        workers.append(second)
        await second.wait_polling()
        result = await asyncio.wait_for(ref.result(), 180)
        rows = await contact_rows(sessions, result.campaign_id)
        ended = Counter(r.outcome for r in rows.values())
        assert result.status is CampaignStatus.COMPLETED and result.runs >= 2
        # One final outcome each, and the workflow's counts are the rows'. A dial the kill cut in the middle of its
        # carrier request is not retried (a phone rings at most once): that contact may end failed, one at most.
        assert (result.busy, result.failed, sum(ended.values())) == (ended[BUSY], ended[FAILED], 12), ended
        assert ended[BUSY] + ended[FAILED] == 12 and ended[FAILED] <= 1, ended
        assert at_kill < 12
        counts = dialled()
        assert all(counts[n] <= 1 for n in numbers), counts  # nobody twice, across the kill and the new runs
        assert all(counts[r.e164] == 1 for r in rows.values() if r.outcome is BUSY), counts
        assert all(r.attempts == 1 for r in rows.values())
    finally:
        for worker in workers:
            worker.close()
        await lk_api.aclose()
        await engine.dispose()
