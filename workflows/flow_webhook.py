"""A flow's ``webhook`` step, the same on a call and in an SMS thread: the space's endpoint is called once (the
party is waiting: a failure or a timeout takes the step's failure branch) and its JSON answer picks the branch."""

from __future__ import annotations

import json
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    import workflows.flow_steps as fs
    from activities.flow_webhooks import FlowWebhookActivities
    from models.flow_calls import FlowWebhookRequest
    from models.flows import FlowDocument, Webhook
    from workflows.failures import failure_reason

ONCE = RetryPolicy(maximum_attempts=1)


async def call_webhook(
    document: FlowDocument, step: Webhook, ctx: fs.FlowContext, request: FlowWebhookRequest
) -> fs.Move:
    try:
        answer = await workflow.execute_activity_method(
            FlowWebhookActivities.call_flow_webhook,
            request,
            start_to_close_timeout=timedelta(seconds=step.timeout_seconds + 5),
            retry_policy=ONCE,
        )
    except ActivityError as exc:
        move = fs.webhook_answer(document, step, None, ctx)
        return fs.Move(move.next, f"{failure_reason(exc)}, {move.detail}")
    if answer.answer_json is None:
        move = fs.webhook_answer(document, step, None, ctx)
        return fs.Move(move.next, f"{answer.error}, {move.detail}")
    return fs.webhook_answer(document, step, json.loads(answer.answer_json), ctx)
