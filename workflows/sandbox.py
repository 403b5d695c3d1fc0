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
