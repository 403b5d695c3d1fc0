"""A flow's ``webhook`` step: POST the call's variables to the space's endpoint and bring back its JSON answer.
Bounded by the step's timeout and never retried (a caller is waiting); a failure is an answer too (the flow
takes its ``on_failure`` branch), never an exception the call has to survive."""

from __future__ import annotations

import json
import logging

import httpx
from temporalio import activity

from models.flow_calls import FlowWebhookAnswer, FlowWebhookRequest

log = logging.getLogger(__name__)
MAX_ANSWER_BYTES = 64 * 1024


class FlowWebhookActivities:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    @activity.defn
    async def call_flow_webhook(self, request: FlowWebhookRequest) -> FlowWebhookAnswer:
        body = {
            "call_id": request.call_id,
            "flow_id": request.flow_id,
            "step": request.step_id,
            "caller": request.caller,
            "variables": request.variables,
        }
        try:
            response = await self._http.post(
                request.url, json=body, timeout=httpx.Timeout(request.timeout_seconds), follow_redirects=False
            )
        except httpx.TimeoutException:
            log.info("flow webhook timed out", extra={"call_id": request.call_id, "step": request.step_id})
            return FlowWebhookAnswer(error=f"no answer within {request.timeout_seconds:g} s")
        except httpx.HTTPError as exc:
            return FlowWebhookAnswer(error=f"could not reach the endpoint ({type(exc).__name__})")
        if not response.is_success:
            return FlowWebhookAnswer(
                error=f"the endpoint answered {response.status_code}", status_code=response.status_code
            )
        if len(response.content) > MAX_ANSWER_BYTES:
            return FlowWebhookAnswer(error="the answer is over 64 KiB", status_code=response.status_code)
        try:
            answer = json.loads(response.content) if response.content else {}
        except ValueError:
            return FlowWebhookAnswer(error="the answer is not JSON", status_code=response.status_code)
        if not isinstance(answer, dict):
            return FlowWebhookAnswer(error="the answer is not a JSON object", status_code=response.status_code)
        return FlowWebhookAnswer(answer_json=json.dumps(answer), status_code=response.status_code)
