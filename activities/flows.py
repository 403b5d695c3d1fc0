"""The flow a call runs, read once at call start (the version then current: later edits do not reach it)."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from models.flow_calls import FLOW_NOT_FOUND, LoadedFlow, LoadFlowInput
from models.tables import Flow, FlowVersion


class FlowActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @activity.defn
    async def load_flow(self, request: LoadFlowInput) -> LoadedFlow:
        async with self._sessions() as session:
            flow = await session.get(Flow, request.flow_id)
            if flow is None or flow.space_id != request.space_id:
                raise ApplicationError("the number's flow does not exist", type=FLOW_NOT_FOUND, non_retryable=True)
            row = await session.scalar(
                select(FlowVersion).where(FlowVersion.flow_id == flow.id, FlowVersion.version == flow.version)
            )
            if row is None:
                raise ApplicationError("the flow has no current version", type=FLOW_NOT_FOUND, non_retryable=True)
            return LoadedFlow(flow.id, row.version, json.dumps(row.document))
