"""The typed client of dial pacers (``workflows/pacer_client.py`` for ``DialPacerWorkflow``)."""

from __future__ import annotations

from temporalio.client import Client

from models.dial_pacing import DIAL_PACER_MAX_GRANTS_PER_RUN
from workflows.dial_pacer import DialPacerWorkflow
from workflows.pacer_client import PacerClient


class DialPacerClient(PacerClient):
    def __init__(self, client: Client, task_queue: str, *, max_grants_per_run: int = DIAL_PACER_MAX_GRANTS_PER_RUN):
        super().__init__(client, task_queue, DialPacerWorkflow.run, max_grants_per_run=max_grants_per_run)
