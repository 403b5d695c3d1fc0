"""The speech role (``telephony worker --role speech``): ``SmsThreadWorkflow`` with the local activities its
threads and flows run (routing, messages, carrier sends, the agent's replies through livekit-agents' LLM and the
knowledge base) and ``TranscriptionWorkflow`` with Whisper, on the speech task queue
(``models.task_queues.speech_task_queue``).

Importing this module loads the speech stack (livekit-agents, onnxruntime, faster-whisper, av) on the main thread
before the worker polls: never later, from an activity on the event loop. The call role never imports it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities.flow_webhooks import FlowWebhookActivities
from activities.flows import FlowActivities
from activities.sms import SmsActivities
from activities.sms_agent import SmsAgentActivities
from activities.sms_pacing import SmsPacingActivities
from activities.transcription import TranscriptionActivities
from models.settings import Settings
from models.task_queues import speech_task_queue
from voice.speech.whisper_engine import get_whisper_engine
from workers.worker_clients import WorkerClients
from workflows.sandbox import workflow_runner
from workflows.sms_pacer_client import SmsPacerClient
from workflows.sms_thread import SmsThreadWorkflow
from workflows.transcription import TranscriptionWorkflow

SPEECH_WORKFLOWS = [SmsThreadWorkflow, TranscriptionWorkflow]


@dataclass
class SpeechActivityClients:
    sms: SmsActivities
    sms_agent: SmsAgentActivities
    transcription: TranscriptionActivities
    flows: FlowActivities
    flow_webhooks: FlowWebhookActivities

    @classmethod
    def build(cls, clients: WorkerClients, settings: Settings) -> SpeechActivityClients:
        threads = settings.transcription_cpu_threads
        return cls(
            sms=SmsActivities(clients.sessions, clients.carriers),
            sms_agent=SmsAgentActivities(clients.sessions, clients.box),
            transcription=TranscriptionActivities(
                clients.sessions, clients.store, lambda: get_whisper_engine(cpu_threads=threads)
            ),
            flows=FlowActivities(clients.sessions),
            flow_webhooks=FlowWebhookActivities(clients.http),
        )

    def sms_activities(self) -> list[Callable[..., Any]]:
        """What an SMS thread runs, locally or not: its flow's activities too (``workflows/sms_flow.py``)."""
        return [
            self.sms.route_sms,
            self.sms.open_thread,
            self.sms.pause_thread,
            self.sms.store_message,
            self.sms.set_opt_out,
            self.sms.record_delivery,
            self.sms.send_to_carrier,
            self.sms_agent.agent_reply,
            self.flows.load_flow,
            self.flow_webhooks.call_flow_webhook,
        ]

    def activities(self) -> list[Callable[..., Any]]:
        return [*self.sms_activities(), self.transcription.transcribe_recording]

    def activities_beside_calls(self) -> list[Callable[..., Any]]:
        """``activities()`` less those the call role registers too (a flow's), for one worker of both roles."""
        return [a for a in self.activities() if a not in (self.flows.load_flow, self.flow_webhooks.call_flow_webhook)]


def send_slots(client: Client, settings: Settings) -> Callable[..., Any]:
    """A thread asks its number's pacer for send slots; the pacers poll beside the call role (settings.task_queue)."""
    return SmsPacingActivities(SmsPacerClient(client, settings.task_queue)).reserve_send_slot


def build_speech_worker(client: Client, settings: Settings, clients: SpeechActivityClients) -> Worker:
    return Worker(
        client,
        task_queue=speech_task_queue(settings.task_queue),
        workflows=SPEECH_WORKFLOWS,
        workflow_runner=workflow_runner(),
        activities=[*clients.activities(), send_slots(client, settings)],
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=3),
        max_cached_workflows=settings.worker_max_cached_workflows,
    )
