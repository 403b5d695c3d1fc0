"""How every worker and replayer runs our workflows: Temporal's sandbox, with the modules that are deterministic
but keep process-wide state passed through (``phonenumbers`` lazily loads its region tables behind a lock, which
the sandbox would refuse inside a workflow task)."""

from __future__ import annotations

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

PASSTHROUGH_MODULES = ("phonenumbers",)


def workflow_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )
