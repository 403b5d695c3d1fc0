"""Replay stored ``CallWorkflow`` histories against the current workflow code.

The histories in ``histories/`` were recorded on a real dev server with the real activities
(``python -m tests.workflows.record_histories``). A change to ``workflows/calls.py`` that would make a
running call take a different path on replay (activities reordered, added or removed, timers changed, ...)
fails here instead of in production. Guard such a change with ``workflow.patched``; re-record only for a
deliberate incompatible change (see the recorder's docstring).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from tests.workflows.record_histories import HISTORIES, SCENARIOS, workflow_id
from workflows.calls import CallWorkflow
from workflows.sandbox import workflow_runner

FILES = sorted(HISTORIES.glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(workflow_id(path.stem), path.read_text())


def test_every_scenario_has_a_stored_history() -> None:
    assert sorted(p.stem for p in FILES) == sorted(SCENARIOS)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
async def test_stored_history_replays(path: Path) -> None:
    history = load(path)
    assert history.events[0].workflow_execution_started_event_attributes.workflow_type.name == "CallWorkflow"
    assert history.events[-1].HasField("workflow_execution_completed_event_attributes"), "recorded call did not end"
    await Replayer(workflows=[CallWorkflow], workflow_runner=workflow_runner()).replay_workflow(history)


async def test_an_altered_history_fails_replay() -> None:
    """The replay test can fail: the same code against a history whose first two activities are swapped.

    Routing and opening the call run as local activities, recorded as markers naming the activity type."""
    path = HISTORIES / "inbound_hold_dtmf_hangup.json"
    raw = json.loads(path.read_text())
    markers = [
        e["markerRecordedEventAttributes"]["details"]["data"]["payloads"][0]
        for e in raw["events"]
        if e["eventType"] == "EVENT_TYPE_MARKER_RECORDED"
    ]
    details = [json.loads(base64.b64decode(m["data"])) for m in markers[:2]]
    assert [d["activity_type"] for d in details] == ["route_call", "open_call"]
    details[0]["activity_type"], details[1]["activity_type"] = details[1]["activity_type"], details[0]["activity_type"]
    for marker, detail in zip(markers, details, strict=False):
        marker["data"] = base64.b64encode(json.dumps(detail).encode()).decode()
    altered = WorkflowHistory.from_json(workflow_id(path.stem), json.dumps(raw))
    with pytest.raises(NondeterminismError):
        await Replayer(workflows=[CallWorkflow], workflow_runner=workflow_runner()).replay_workflow(altered)
