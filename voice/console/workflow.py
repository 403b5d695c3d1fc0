"""The console's only contact with its call's ``CallWorkflow``: how a web call starts (``web_call``) and a small
handle shaped like the typed call client's call reference (``connected``, ``dtmf_received``, ``hangup_received``,
``state``, ``result``), so the two can be swapped in this one file."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError

from models import calls as c
from models.enums import CallDirection, CallState, MediaMode
from models.tables import new_id
from voice.console.access import ConsoleTarget


def web_call(target: ConsoleTarget) -> c.StartCall:
    """A console call: inbound, from ``web:<key id>`` to the agent (or the number), media mode ``web``."""
    call_id = new_id("calls")
    return c.StartCall(
        call_id=call_id,
        workflow_id=c.call_workflow_id(call_id),
        direction=CallDirection.INBOUND,
        from_number=target.caller,
        to_number=target.to,
        carrier_call_id=call_id,
        space_id=target.space_id,
        phone_number_id=target.phone_number_id,
        media_mode=MediaMode.WEB,
        agent_id=target.agent_id,
    )


class ConsoleCallRef:
    def __init__(self, handle: WorkflowHandle[Any, c.CallStateView]) -> None:
        self._handle = handle

    @property
    def workflow_id(self) -> str:
        return self._handle.id

    async def connected(self, event: c.ConnectedEvent) -> bool:
        return await self._signal(c.SIGNAL_CONNECTED, event)

    async def dtmf_received(self, event: c.DtmfEvent) -> bool:
        return await self._signal(c.SIGNAL_DTMF_RECEIVED, event)

    async def hangup_received(self, event: c.HangupEvent) -> bool:
        return await self._signal(c.SIGNAL_HANGUP_RECEIVED, event)

    async def state(self) -> c.CallStateView:
        view: c.CallStateView = await self._handle.query(c.QUERY_GET_STATE, result_type=c.CallStateView)
        return view

    async def result(self) -> c.CallStateView:
        """The call's final state, once its workflow has completed."""
        return await self._handle.result()

    async def _signal(self, name: str, event: object) -> bool:
        try:
            await self._handle.signal(name, event)
        except RPCError:  # the workflow is gone (ended): nothing to tell it
            return False
        return True


async def start_web_call(client: Client, task_queue: str, start: c.StartCall) -> ConsoleCallRef:
    attributes = TypedSearchAttributes(
        [
            SearchAttributePair(c.SA_CALL_STATE, CallState.RINGING.value),
            SearchAttributePair(c.SA_CALL_DIRECTION, start.direction.value),
            SearchAttributePair(c.SA_SPACE_ID, start.space_id or ""),
        ]
    )
    handle = await client.start_workflow(
        c.CALL_WORKFLOW,
        start,
        id=start.workflow_id,
        task_queue=task_queue,
        id_reuse_policy=c.CALL_ID_REUSE_POLICY,
        search_attributes=attributes,
        result_type=c.CallStateView,
    )
    return ConsoleCallRef(handle)
