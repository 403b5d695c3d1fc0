"""Crash test: the worker is a real ``telephony worker --role calls`` process, killed with SIGKILL while a call
is ACTIVE.

A DTMF event arrives while no worker runs; a new worker process picks the call up (from the dead worker's
sticky queue, after ``sticky_queue_schedule_to_start_timeout``), and the hang-up ends it with the whole
timeline, the Call row and the LiveKit room exactly as if nothing had happened.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import pytest
from livekit import api as lk
from temporalio.api.enums.v1 import EventType, TimeoutType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from models.calls import (
    SIGNAL_DTMF_RECEIVED,
    ActiveEvent,
    CallStateView,
    ConnectedEvent,
    DtmfEvent,
    HangupRequest,
)
from models.db import create_engine, migrate, session_factory
from models.enums import CallState, EndReason
from models.tables import Call
from tests.conftest import SECRET_KEY
from tests.livekit_standin import LiveKitStandIn
from tests.workflows.conftest import AGENT_NAME, CallHarness
from workers.worker_role import WorkerRole
from workflows.calls import CallWorkflow
from workflows.sandbox import workflow_runner

S = CallState
READY_TIMEOUT = 60.0  # a cold interpreter importing every workflow and activity, on a busy 2-core machine
POLLING_LINE = "worker polling"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class WorkerProcess:
    """``python -m workers.cli worker --role <role>`` with its output in a log file (this checkout's code, even
    when the interpreter's editable install points at another one)."""

    process: subprocess.Popen[bytes]
    log: Path
    started: float
    _log_file: IO[bytes] = field(repr=False)

    @classmethod
    def start(cls, env: dict[str, str], cwd: Path, name: str, role: WorkerRole = WorkerRole.ALL) -> WorkerProcess:
        log = cwd / f"{name}.log"
        log_file = log.open("wb")
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "worker", "--role", role.value],
            env={**env, "PYTHONPATH": str(ROOT)},
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        return cls(process, log, started, log_file)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def wait_polling(self) -> float:
        """Wait for the "worker polling" log line; returns when it was seen (monotonic)."""
        deadline = time.monotonic() + READY_TIMEOUT
        while POLLING_LINE not in self.output():
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited with {self.process.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker not polling after {READY_TIMEOUT} s:\n{self.output()}")
            await asyncio.sleep(0.05)
        return time.monotonic()

    def kill9(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        assert self.process.wait(timeout=10) == -signal.SIGKILL

    def stop(self) -> int:
        """SIGTERM and wait: the CLI shuts the worker down and exits 0."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        finally:
            self.close()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log_file.close()


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:  # whatever happened, no worker process outlives the test
        worker.close()
        print(f"--- {worker.log.name} (exit {worker.process.returncode})\n{worker.output()}")  # shown on failure


def worker_env(
    temporal_env: WorkflowEnvironment, standin: LiveKitStandIn | None, tmp_path: Path, url: str, queue: str
) -> dict[str, str]:
    """A worker process's environment: this test's database, Temporal and queue (and LiveKit stand-in, if any);
    its data directory is ``tmp_path / "data"``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHONY_")}
    env.update(
        TELEPHONY_DATABASE_URL=url,
        TELEPHONY_SECRET_KEYS=SECRET_KEY,
        TELEPHONY_TEMPORAL_ADDRESS=temporal_env.client.service_client.config.target_host,
        TELEPHONY_TEMPORAL_NAMESPACE=temporal_env.client.namespace,
        TELEPHONY_TASK_QUEUE=queue,
        TELEPHONY_DATA_DIR=str(tmp_path / "data"),
        PYTHONUNBUFFERED="1",
    )
    if standin is not None:
        env.update(
            TELEPHONY_LIVEKIT_URL=standin.url,
            TELEPHONY_LIVEKIT_API_KEY=standin.api_key,
            TELEPHONY_LIVEKIT_API_SECRET=standin.api_secret,
            TELEPHONY_LIVEKIT_AGENT_NAME=AGENT_NAME,
        )
    return env


async def state_of(handle: WorkflowHandle[Any, Any]) -> CallStateView | None:
    """``get_state``, or ``None`` while no worker answers queries."""
    try:
        return await handle.query(CallWorkflow.get_state, rpc_timeout=timedelta(seconds=2))
    except Exception:  # RPC timeout / no poller: the worker is not there (yet)
        return None


async def until(handle: WorkflowHandle[Any, Any], predicate: Any, within: float = 30.0) -> CallStateView:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    view = None
    while loop.time() < deadline:
        view = await state_of(handle)
        if view is not None and predicate(view):
            return view
        await asyncio.sleep(0.05)
    raise AssertionError(f"call never reached the expected state within {within} s: {view}")


def events(view: CallStateView) -> list[str]:
    return [e.event for e in view.timeline]


@pytest.mark.slow
async def test_kill_9_worker_during_an_active_call(
    temporal_env: WorkflowEnvironment, livekit_standin: LiveKitStandIn, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'telephony.db'}"
    await asyncio.to_thread(migrate, url)
    engine = create_engine(url)
    lk_api = lk.LiveKitAPI(livekit_standin.url, livekit_standin.api_key, livekit_standin.api_secret)
    queue = f"crash-{uuid.uuid4().hex[:8]}"
    env = worker_env(temporal_env, livekit_standin, tmp_path, url, queue)
    try:
        calls = CallHarness(temporal_env.client, queue, session_factory(engine), livekit_standin, lk_api)

        first = WorkerProcess.start(env, tmp_path, "worker-1", WorkerRole.CALLS)
        workers.append(first)
        await first.wait_polling()

        # An inbound call: the caller joins the room (connected), the agent is dispatched and joins (active).
        line = await calls.new_line()
        start = calls.inbound(line)
        room = start.room_name
        assert room is not None
        caller = await livekit_standin.add_sip_caller(room, start.from_number, line.e164)
        handle = await calls.start(start)
        await handle.signal(
            CallWorkflow.connected, ConnectedEvent(room_name=room, participant_identity=caller.identity)
        )
        await until(handle, lambda v: "agent_dispatched" in events(v))
        await handle.signal(CallWorkflow.active, ActiveEvent(agent_identity="agent-1"))
        await until(handle, lambda v: v.state is S.ACTIVE)

        async def settled() -> bool:
            """The ACTIVE state is in the database and no activity is in flight (kill an idle call)."""
            async with calls.sessions() as session:
                call = await session.get(Call, start.call_id)
                if call is None or call.state is not S.ACTIVE:
                    return False
            described = (await handle.describe()).raw_description
            return not described.pending_activities and not described.HasField("pending_workflow_task")

        for _ in range(200):
            if await settled():
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the ACTIVE call never settled")

        # kill -9 the worker; a DTMF event arrives while no worker runs; a new worker process starts.
        first.kill9()
        killed = time.monotonic()
        await handle.signal(CallWorkflow.dtmf_received, DtmfEvent("42", event_id="dtmf-while-dead"))
        second = WorkerProcess.start(env, tmp_path, "worker-2", WorkerRole.CALLS)
        workers.append(second)
        polling = await second.wait_polling()
        await until(handle, lambda v: v.dtmf_received == "42", within=60.0)
        resumed = time.monotonic()
        print(
            f"\nworker resume after kill -9: {resumed - killed:.1f} s from the kill "
            f"({resumed - second.started:.1f} s from starting the new process, "
            f"{resumed - polling:.1f} s after it logged '{POLLING_LINE}'; "
            f"process start-up {polling - second.started:.1f} s)"
        )

        # Hang up on the new worker.
        await handle.execute_update(CallWorkflow.hangup, HangupRequest(by="staff-1"))
        try:
            view: CallStateView = await asyncio.wait_for(handle.result(), timeout=60)
        except TimeoutError:
            history = await handle.fetch_history()
            names = [EventType.Name(e.event_type) for e in history.events]
            raise AssertionError(f"the call did not end: {names}") from None

        assert (view.state, view.end_reason) == (S.ENDED, EndReason.COMPLETED)
        assert events(view) == ["ringing", "connected", "agent_dispatched", "active", "dtmf_received", "hangup"]
        assert [(e.previous, e.state) for e in view.timeline if e.previous is not None] == [
            (S.RINGING, S.CONNECTED),
            (S.CONNECTED, S.ACTIVE),
            (S.ACTIVE, S.ENDED),
        ]
        assert [e.state for e in view.timeline] == [S.RINGING, S.CONNECTED, S.CONNECTED, S.ACTIVE, S.ACTIVE, S.ENDED]
        stamps = [e.at for e in view.timeline]
        assert stamps == sorted(stamps)
        assert view.timeline[4].detail == "42" and view.dtmf_received == "42"
        assert view.timeline[-1].detail == "staff-1"
        assert {(p.identity, p.kind.value) for p in view.participants} == {
            (caller.identity, "caller"),
            ("agent-1", "agent"),
        }
        assert all(p.left_at is not None for p in view.participants)

        async with calls.sessions() as session:
            call = await session.get(Call, start.call_id)
            assert call is not None
            assert (call.state, call.end_reason) == (S.ENDED, EndReason.COMPLETED)
            assert call.connected_at is not None and call.ended_at is not None

        # LiveKit saw each side effect once: the crash repeated nothing, and the room is gone.
        assert livekit_standin.room(room) is None
        # LiveKit made the room for the arriving SIP call: the workflow does not create it again.
        assert [r for r in livekit_standin.calls("CreateRoom") if r.name == room] == []
        assert len([d for d in livekit_standin.calls("CreateDispatch") if d.room == room]) == 1
        assert len([d for d in livekit_standin.calls("DeleteRoom") if d.room == room]) == 1

        # Both workers show in the history (the second took over), and it replays.
        history = await handle.fetch_history()
        pids = {
            e.workflow_task_started_event_attributes.identity.split("@")[0]
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
        }
        assert {str(first.process.pid), str(second.process.pid)} <= pids
        signaled = next(
            e
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
            and e.workflow_execution_signaled_event_attributes.signal_name == SIGNAL_DTMF_RECEIVED
        )
        timed_out = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT]
        if timed_out:  # the DTMF's task waited on the dead worker's sticky queue until it timed out
            wait = timed_out[0].event_time.ToDatetime() - signaled.event_time.ToDatetime()
            kind = timed_out[0].workflow_task_timed_out_event_attributes.timeout_type
            print(
                f"the workflow task timed out ({TimeoutType.Name(kind)}) {wait.total_seconds():.1f} s after the signal"
            )
        await Replayer(workflows=[CallWorkflow], workflow_runner=workflow_runner()).replay_workflow(history)

        assert second.stop() == 0, second.output()
    finally:
        await lk_api.aclose()
        await engine.dispose()
