"""The API's Temporal client, connected on first use so the API starts even while Temporal does not, and the
typed call client on top of it (the only way the API talks to calls)."""

from __future__ import annotations

import asyncio

from fastapi import HTTPException, status
from temporalio.client import Client
from temporalio.service import RPCError

from models.payloads import DATA_CONVERTER
from models.settings import Settings
from workflows.call_client import CallClient
from workflows.campaign_client import CampaignClient


class TemporalGateway:
    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self._settings = settings
        self._client = client
        self._lock = asyncio.Lock()

    async def client(self) -> Client:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    try:
                        self._client = await Client.connect(
                            self._settings.temporal_address,
                            namespace=self._settings.temporal_namespace,
                            data_converter=DATA_CONVERTER,
                        )
                    except (RuntimeError, RPCError) as exc:
                        raise HTTPException(
                            status.HTTP_503_SERVICE_UNAVAILABLE, "workflow engine unavailable, retry shortly"
                        ) from exc
        return self._client

    async def calls(self) -> CallClient:
        return CallClient(await self.client(), self._settings.task_queue)

    async def campaigns(self) -> CampaignClient:
        return CampaignClient(await self.client(), self._settings.task_queue)
