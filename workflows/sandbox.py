"""How every worker and replayer runs our workflows: Temporal's sandbox, with the modules that are deterministic
but keep process-wide state passed through (``phonenumbers`` lazily loads its region tables behind a lock, which
the sandbox would refuse inside a workflow task), and ``zoneinfo.ZoneInfo`` usable: campaigns compute calling
windows in each contact's local time (reading the zone database is deterministic for a given tzdata)."""

from __future__ import annotations

import dataclasses

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

PASSTHROUGH_MODULES = ("phonenumbers", "zoneinfo")


def workflow_runner() -> SandboxedWorkflowRunner:
    restrictions = SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    members = restrictions.invalid_module_members.with_child_unrestricted("zoneinfo", "ZoneInfo")
    return SandboxedWorkflowRunner(restrictions=dataclasses.replace(restrictions, invalid_module_members=members))
