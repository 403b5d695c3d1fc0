"""kill -9 of the worker process at random moments while several calls go through their whole life (ringing,
agent dispatch, active, hold, resume, DTMF, a warm transfer, hang-up): a new worker process takes over each
time, every call ends ENDED with its complete timeline, and LiveKit saw one dispatch, one transfer dial and one
room deletion per call. Updates carry ids, as an operator's retrying client would, so a retry is one action."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from livekit import api as lk
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from models.calls import (
    ActiveEvent,
    CallStateView,
    ConnectedEvent,
    DtmfEvent,
    HangupRequest,
    HoldRequest,
    ResumeRequest,
    TransferMode,
    TransferRequest,
)
from models.db import create_engine, migrate, session_factory
from models.enums import CallState, EndReason
from tests.chaos.conftest import ChaosSize
from tests.conftest import unique_e164
from tests.livekit_standin import LiveKitStandIn
from tests.workflows.conftest import CallHarness
from tests.workflows.test_call_crash import WorkerProcess, events, until, worker_env
from workflows.calls import CallWorkflow

S = CallState
T = TypeVar("T")
EXPECTED = [
    "ringing",
    "connected",
    "agent_dispatched",
    "active",
    "hold",
    "resume",
    "dtmf_received",
    "transfer",
    "transfer_connected",
    "hangup",
]
STEP_TIMEOUT = 120.0  # a step may wait for a new worker process to start on a loaded machine


async def _retrying(action: Callable[[], Awaitable[T]]) -> T:
    """Retry an RPC that failed because no worker answered in time (the same update id: one effect)."""
    deadline = time.monotonic() + STEP_TIMEOUT
    while True:
        try:
            return await asyncio.wait_for(action(), timeout=30)
        except (RPCError, TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def _one_call(calls: CallHarness, index: int, pause: Callable[[], Awaitable[None]]) -> tuple[str, CallStateView]:
    line = await calls.with_trunk(await calls.new_line())
    start = calls.inbound(line)
    room = start.room_name
    assert room is not None
    caller = await calls.livekit.add_sip_caller(room, start.from_number, line.e164)
    handle: WorkflowHandle[Any, CallStateView] = await calls.start(start)
    await pause()
    await handle.signal(CallWorkflow.connected, ConnectedEvent(room_name=room, participant_identity=caller.identity))
    await until(handle, lambda v: "agent_dispatched" in events(v), within=STEP_TIMEOUT)
    await handle.signal(CallWorkflow.active, ActiveEvent(agent_identity=f"agent-{index}"))
    await until(handle, lambda v: v.state is S.ACTIVE, within=STEP_TIMEOUT)
    wf = start.workflow_id

    async def update(method: Any, request: Any, name: str) -> Any:
        try:
            return await _retrying(lambda: handle.execute_update(method, request, id=f"{wf}-{name}"))
        except WorkflowUpdateFailedError as exc:
            raise AssertionError(f"call {index}: {name} refused: {exc.cause}") from exc

    await pause()
    await update(CallWorkflow.hold, HoldRequest(by="chaos"), "hold")
    await pause()
    await update(CallWorkflow.resume, ResumeRequest(by="chaos"), "resume")
    await handle.signal(CallWorkflow.dtmf_received, DtmfEvent("5", event_id=f"{wf}-dtmf"))
    await handle.signal(CallWorkflow.dtmf_received, DtmfEvent("5", event_id=f"{wf}-dtmf"))  # redelivered: once
    await until(handle, lambda v: v.dtmf_received == "5", within=STEP_TIMEOUT)
    await pause()
    target = unique_e164()
    result = await update(CallWorkflow.transfer, TransferRequest(target, TransferMode.WARM, by="chaos"), "transfer")
    assert result.ok, (index, result)
    await pause()
    await update(CallWorkflow.hangup, HangupRequest(by="chaos"), "hangup")
    view = await asyncio.wait_for(handle.result(), timeout=STEP_TIMEOUT)
    return room, view


async def test_kill_9_worker_at_random_points_of_many_calls(
    temporal_env: WorkflowEnvironment, livekit_standin: LiveKitStandIn, tmp_path: Path, size: ChaosSize
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'telephony.db'}"
    await asyncio.to_thread(migrate, url)
    engine = create_engine(url)
    lk_api = lk.LiveKitAPI(livekit_standin.url, livekit_standin.api_key, livekit_standin.api_secret)
    queue = f"chaos-{uuid.uuid4().hex[:8]}"
    env = worker_env(temporal_env, livekit_standin, tmp_path, url, queue)
    rng = random.Random(size.calls)  # the same kill schedule for the same size: a failure can be re-run
    workers: list[WorkerProcess] = []
    kills = 0
    try:
        calls = CallHarness(temporal_env.client, queue, session_factory(engine), livekit_standin, lk_api)
        workers.append(WorkerProcess.start(env, tmp_path, "worker-0"))
        await workers[-1].wait_polling()

        async def pause() -> None:  # independent callers: steps land at different moments
            await asyncio.sleep(rng.uniform(0.3, 1.5))

        async def staggered(index: int) -> tuple[str, CallStateView]:
            await asyncio.sleep(index * 1.0)
            return await _one_call(calls, index, pause)

        driving = [asyncio.create_task(staggered(i)) for i in range(size.calls)]
        done = asyncio.gather(*driving)
        while not done.done():
            await asyncio.wait([done], timeout=rng.uniform(1.0, 3.0))
            if done.done():
                break
            workers[-1].kill9()
            kills += 1
            workers.append(WorkerProcess.start(env, tmp_path, f"worker-{kills}"))
            await workers[-1].wait_polling()
        finished = await done
        print(f"\n{size.calls} calls, worker killed {kills} times")
        assert kills >= 2, "the calls finished before the worker could be killed twice"

        for room, view in finished:
            assert (view.state, view.end_reason) == (S.ENDED, EndReason.COMPLETED), view
            assert events(view) == EXPECTED, (room, events(view))
            stamps = [e.at for e in view.timeline]
            assert stamps == sorted(stamps)
            assert len([d for d in livekit_standin.calls("CreateDispatch") if d.room == room]) == 1, room
            assert len([d for d in livekit_standin.calls("CreateSIPParticipant") if d.room_name == room]) == 1, room
            # Deleting is idempotent and retried: a kill after LiveKit got the request but before the activity
            # completed asks again (dials, dispatches and egress are the once-only effects).
            assert len([d for d in livekit_standin.calls("DeleteRoom") if d.room == room]) >= 1, room
    finally:
        for worker in workers:
            worker.close()
        await lk_api.aclose()
        await engine.dispose()
