"""What bench/campaign.py reads after a run: the carrier's dial times (the stand-in's) and workflow histories
(events, bytes, workflow-task time), per continue-as-new run of the campaign and for a sample of its child calls."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench._support import summary_ms
from tests.twilio_standin import TwilioStandIn
from tests.twilio_standin.dialing import max_in_one_second, max_simultaneous


def call_starts(db: Path, space_id: str) -> dict[str, float]:
    """Each outbound call's start (its workflow's clock at RINGING), by the number called."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT to_number, created_at FROM calls WHERE space_id = ?", (space_id,)).fetchall()
    return {to: datetime.fromisoformat(str(at)).timestamp() for to, at in rows}


def dial_figures(standin: TwilioStandIn, numbers: set[str], starts: dict[str, float]) -> dict[str, str]:
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


@dataclass
class RunHistory:
    events: int = 0
    bytes: int = 0
    tasks: int = 0  # workflow tasks completed
    task_seconds: float = 0.0  # started -> completed, summed (the worker's time on them, local activities included)
    wait_seconds: float = 0.0  # scheduled -> started, summed (in the task queue, waiting for a worker's slot)
    timeouts: int = 0  # workflow tasks timed out (a worker too busy to finish them in time)
    children: int = 0  # child workflows started


@dataclass
class History:
    runs: list[RunHistory] = field(default_factory=list)

    @property
    def total(self) -> RunHistory:
        t = RunHistory()
        for r in self.runs:
            t.events, t.bytes, t.tasks = t.events + r.events, t.bytes + r.bytes, t.tasks + r.tasks
            t.task_seconds, t.timeouts = t.task_seconds + r.task_seconds, t.timeouts + r.timeouts
            t.wait_seconds += r.wait_seconds
            t.children += r.children
        return t


async def run_history(client: Client, workflow_id: str, run_id: str | None = None) -> RunHistory:
    run = RunHistory()
    started_at: datetime | None = None
    scheduled_at: datetime | None = None
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    async for event in handle.fetch_history_events():
        run.events += 1
        run.bytes += event.ByteSize()
        kind, at = event.event_type, event.event_time.ToDatetime()
        if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            scheduled_at = at
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            started_at = at
            if scheduled_at is not None:
                run.wait_seconds += (at - scheduled_at).total_seconds()
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and started_at is not None:
            run.tasks += 1
            run.task_seconds += (at - started_at).total_seconds()
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
            run.timeouts += 1
        elif kind == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            run.children += 1
    return run


async def history(client: Client, workflow_id: str) -> History:
    """Every run of a workflow (continue-as-new included), oldest first."""
    runs = [e async for e in client.list_workflows(f"WorkflowId = '{workflow_id}'")]
    runs.sort(key=lambda e: e.start_time)
    return History([await run_history(client, workflow_id, e.run_id) for e in runs])


async def child_sample(client: Client, campaign_id: str, size: int = 20) -> History:
    """The histories of up to ``size`` of the campaign's calls."""
    found = History()
    async for execution in client.list_workflows(f"CampaignId = '{campaign_id}'", limit=size):
        found.runs.append(await run_history(client, execution.id, execution.run_id))
    return found
