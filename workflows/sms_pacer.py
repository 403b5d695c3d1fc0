"""``SmsPacerWorkflow``: one per space + our number; grants send slots to every thread of that number (a carrier
limits a sending number, not a conversation). The pacer itself is ``workflows/pacer.py``."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import models.sms_pacing as p
    from workflows.pacer import PacerWorkflow


@workflow.defn(name=p.SMS_PACER_WORKFLOW)
class SmsPacerWorkflow(PacerWorkflow):
    @workflow.run
    async def run(self, start: p.StartSmsPacer) -> p.PacerView:
        return await self.serve(start)
