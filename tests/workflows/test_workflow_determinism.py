"""Workflow code reads time, randomness and ids only through ``temporalio.workflow``. The call role runs
unsandboxed in production (``Settings.workflow_sandbox``), so besides the sandboxed suite and replays, this reads
every module of ``workflows/`` for the calls the sandbox would have refused at run time."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "workflows"
# Modules that run outside workflows (clients, the runner's own wiring) may use these.
OUTSIDE_WORKFLOWS = {"sandbox.py", "call_client.py", "sms_client.py", "campaign_client.py", "pacer_client.py",
                     "dial_pacer_client.py", "sms_pacer_client.py", "transcription_client.py",
                     "retention_schedule.py"}  # fmt: skip
FORBIDDEN = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "monotonic"),
    ("time", "perf_counter"),
    ("time", "sleep"),
    ("uuid", "uuid1"),
    ("uuid", "uuid4"),
    ("os", "getenv"),
    ("os", "environ"),
}
FORBIDDEN_MODULES = {"random", "secrets"}


def offences(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (node.value.id, node.attr) in FORBIDDEN or node.value.id in FORBIDDEN_MODULES:
                found.append(f"{path.name}:{node.lineno} {node.value.id}.{node.attr}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open":
            found.append(f"{path.name}:{node.lineno} open()")
    return found


def test_workflow_code_reads_time_randomness_and_ids_through_temporal() -> None:
    modules = [p for p in WORKFLOWS.glob("*.py") if p.name not in OUTSIDE_WORKFLOWS]
    assert len(modules) > 20
    assert [o for p in modules for o in offences(p)] == []


def test_the_check_above_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import random, time, uuid\nx = time.time() + random.random()\ny = uuid.uuid4()\nopen('f')\n")
    assert len(offences(bad)) == 4
