"""How every worker and replayer runs our workflows: Temporal's sandbox, with the modules that are deterministic
but keep process-wide state passed through (``phonenumbers`` lazily loads its region tables behind a lock, which
the sandbox would refuse inside a workflow task), and ``zoneinfo.ZoneInfo`` usable: campaigns compute calling
windows in each contact's local time (reading the zone database is deterministic for a given tzdata).

The sandbox loads a workflow's module afresh for every new run: from its cached bytecode when there is one, else by
compiling the source (about 4 ms a run here). Our image and CI set PYTHONDONTWRITEBYTECODE, so importing never
writes that cache; the first runner of a process writes it for this package (``compileall`` ignores the setting;
a read-only tree just keeps compiling)."""

from __future__ import annotations

import compileall
import dataclasses
import functools
from pathlib import Path

from temporalio.worker import UnsandboxedWorkflowRunner, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

PASSTHROUGH_MODULES = ("phonenumbers", "zoneinfo")


@functools.cache
def _bytecode_cached() -> bool:
    return compileall.compile_dir(Path(__file__).parent, maxlevels=0, quiet=2)


def workflow_runner() -> SandboxedWorkflowRunner:
    _bytecode_cached()
    restrictions = SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    members = restrictions.invalid_module_members.with_child_unrestricted("zoneinfo", "ZoneInfo")
    return SandboxedWorkflowRunner(restrictions=dataclasses.replace(restrictions, invalid_module_members=members))


def call_workflow_runner(sandboxed: bool) -> WorkflowRunner:
    """The call role's runner (``Settings.workflow_sandbox``). Unsandboxed, a new run costs no module re-execution
    (bench.concurrency: 26 -> 39 calls opened per second, 414 -> 292 MB at 2,000 calls); the determinism guard
    then lives where the code is exercised: the suite runs sandboxed (tests/conftest.py) and every stored history
    is replayed sandboxed (tests/workflows/test_call_replay.py)."""
    return workflow_runner() if sandboxed else UnsandboxedWorkflowRunner()
