"""``DialPacerWorkflow``: one per carrier account or SIP trunk; grants dial slots to every campaign calling through
it (the contract: ``models/dial_pacing.py``; the pacer: ``workflows/pacer.py``)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import models.sms_pacing as p
    from models.dial_pacing import DIAL_PACER_WORKFLOW
    from workflows.pacer import PacerWorkflow


@workflow.defn(name=DIAL_PACER_WORKFLOW)
class DialPacerWorkflow(PacerWorkflow):
    @workflow.run
    async def run(self, start: p.StartSmsPacer) -> p.PacerView:
        return await self.serve(start)
