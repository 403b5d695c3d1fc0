"""The typed client of SMS pacers (``workflows/pacer_client.py`` for ``SmsPacerWorkflow``): the send-slot activity,
the API and tests use it."""

from __future__ import annotations

from temporalio.client import Client

import models.sms_pacing as p
from workflows.pacer_client import PacerClient
from workflows.sms_pacer import SmsPacerWorkflow


class SmsPacerClient(PacerClient):
    def __init__(self, client: Client, task_queue: str, *, max_grants_per_run: int = p.MAX_GRANTS_PER_RUN) -> None:
        super().__init__(client, task_queue, SmsPacerWorkflow.run, max_grants_per_run=max_grants_per_run)
