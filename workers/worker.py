"""The Temporal worker process: builds the clients activities need, then polls the task queue."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from livekit import api as lk
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from activities.calls import CallRecordActivities
from activities.campaigns import CampaignActivities, campaign_activities
from activities.carrier_calls import CarrierCallActivities
from activities.carrier_clients import CarrierClients
from activities.carrier_numbers import CarrierNumberActivities
from activities.dial_pacing import DialPacingActivities, DialSlots
from activities.flow_webhooks import FlowWebhookActivities
from activities.flows import FlowActivities
from activities.livekit_rooms import LiveKitRoomActivities
from activities.livekit_sip import SipTrunkActivities
from activities.recording_assets import RecordingAssetActivities
from activities.recordings import RecordingActivities
from activities.retention import RetentionActivities
from activities.sms import SmsActivities
from activities.sms_agent import SmsAgentActivities
from activities.sms_pacing import SmsPacingActivities
from activities.transcription import TranscriptionActivities
from models.db import create_engine, session_factory
from models.payloads import DATA_CONVERTER
from models.secret_box import SecretBox
from models.settings import Settings
from models.sms_pacing import sms_pacer_task_queue
from storage import build_store
from voice.speech.whisper_engine import get_whisper_engine
from workers.worker_group import WorkerGroup
from workflows.call_client import CallClient
from workflows.calls import CallWorkflow
from workflows.campaign import CampaignWorkflow
from workflows.dial_pacer import DialPacerWorkflow
from workflows.dial_pacer_client import DialPacerClient
from workflows.numbers import PurchaseNumberWorkflow, ReleaseNumberWorkflow
from workflows.provisioning import DeprovisionSipTrunkWorkflow, ProvisionSipTrunkWorkflow
from workflows.retention import RetentionWorkflow
from workflows.retention_schedule import ensure_retention_schedule
from workflows.sandbox import workflow_runner
from workflows.sms_pacer import SmsPacerWorkflow
from workflows.sms_pacer_client import SmsPacerClient
from workflows.sms_thread import SmsThreadWorkflow
from workflows.transcription import TranscriptionWorkflow

log = logging.getLogger(__name__)

WORKFLOWS = [
    CallWorkflow,
    ProvisionSipTrunkWorkflow,
    DeprovisionSipTrunkWorkflow,
    PurchaseNumberWorkflow,
    ReleaseNumberWorkflow,
    SmsThreadWorkflow,
    TranscriptionWorkflow,
    RetentionWorkflow,
    CampaignWorkflow,
]


def client_activities(client: Client, settings: Settings) -> list[Callable[..., Any]]:
    """Activities that talk to Temporal itself (a workflow cannot send another one an update)."""
    slots = dial_slots(client, settings)
    assert slots is not None
    return [
        SmsPacingActivities(SmsPacerClient(client, settings.task_queue)).reserve_send_slot,
        DialPacingActivities(slots).reserve_dial_slot,
    ]


def dial_slots(client: Client | None, settings: Settings) -> DialSlots | None:
    return DialSlots(DialPacerClient(client, settings.task_queue)) if client is not None else None


def build_pacer_worker(client: Client, settings: Settings) -> Worker:
    """Pacers (SMS numbers, dial routes) poll a task queue of their own: a pacer answers every send or dial of its
    resource, so its workflow tasks must not wait behind those of hundreds of busy threads or calls (bench/sms.py)."""
    return Worker(
        client,
        task_queue=sms_pacer_task_queue(settings.task_queue),
        workflows=[SmsPacerWorkflow, DialPacerWorkflow],
        workflow_runner=workflow_runner(),
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=3),
        max_cached_workflows=200,
    )


@dataclass
class ActivityClients:
    sip_trunks: SipTrunkActivities
    carrier_numbers: CarrierNumberActivities
    call_records: CallRecordActivities
    rooms: LiveKitRoomActivities
    carrier_calls: CarrierCallActivities
    recordings: RecordingActivities
    sms: SmsActivities
    sms_agent: SmsAgentActivities
    recording_assets: RecordingAssetActivities
    transcription: TranscriptionActivities
    retention: RetentionActivities
    flows: FlowActivities
    flow_webhooks: FlowWebhookActivities
    sessions: async_sessionmaker[AsyncSession] | None = None  # campaign activities get theirs in build_worker

    def activities(self) -> list[Callable[..., Any]]:
        return [
            *self.sms_activities(),
            self.call_records.route_call,
            self.call_records.open_call,
            self.call_records.record_call_state,
            self.rooms.create_room,
            self.rooms.dispatch_agent,
            self.rooms.set_hold,
            self.rooms.transfer_participant,
            self.rooms.dial_participant,
            self.rooms.send_dtmf,
            self.rooms.remove_participant,
            self.rooms.delete_room,
            self.carrier_calls.place_carrier_call,
            self.carrier_calls.end_carrier_call,
            self.carrier_calls.redirect_carrier_call,
            self.carrier_calls.reconnect_stream,
            self.recordings.start_recording,
            self.recordings.stop_recording,
            self.recording_assets.store_recording,
            self.recording_assets.register_egress_asset,
            self.transcription.transcribe_recording,
            self.retention.find_expired_assets,
            self.retention.delete_asset,
            self.retention.delete_expired_transcripts,
            self.sip_trunks.apply_sip_trunk,
            self.sip_trunks.mark_trunk_failed,
            self.sip_trunks.delete_livekit_sip_objects,
            self.carrier_numbers.buy_number,
            self.carrier_numbers.record_purchased_number,
            self.carrier_numbers.release_number,
            self.flows.load_flow,
            self.flow_webhooks.call_flow_webhook,
        ]

    def sms_activities(self) -> list[Callable[..., Any]]:
        return [
            self.sms.route_sms,
            self.sms.open_thread,
            self.sms.pause_thread,
            self.sms.store_message,
            self.sms.set_opt_out,
            self.sms.record_delivery,
            self.sms.send_to_carrier,
            self.sms_agent.agent_reply,
        ]


@asynccontextmanager
async def activity_clients(settings: Settings, temporal: Client | None = None) -> AsyncIterator[ActivityClients]:
    """Every client the activities use, built from settings and closed on exit. ``temporal``: the activities that
    talk to workflows get it (the carrier keeps its accounts' calls-per-second limits through their dial pacers)."""
    engine = create_engine(settings.resolved_database_url)
    sessions = session_factory(engine)
    box = SecretBox.from_setting(
        settings.secret_keys.get_secret_value() if settings.secret_keys else None, settings.data_dir
    )
    livekit = None
    if settings.livekit_configured:
        assert settings.livekit_api_secret is not None
        livekit = lk.LiveKitAPI(
            settings.livekit_url, settings.livekit_api_key, settings.livekit_api_secret.get_secret_value()
        )
    store = build_store(settings)
    threads = settings.transcription_cpu_threads
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as http:
        carriers = CarrierClients(sessions, box, http, settings)
        try:
            yield ActivityClients(
                sip_trunks=SipTrunkActivities(sessions, box, livekit),
                carrier_numbers=CarrierNumberActivities(carriers),
                call_records=CallRecordActivities(sessions),
                rooms=LiveKitRoomActivities(livekit, settings.livekit_agent_name),
                carrier_calls=CarrierCallActivities(carriers, dial_slots(temporal, settings)),
                recordings=RecordingActivities(livekit, settings),
                sms=SmsActivities(sessions, carriers),
                sms_agent=SmsAgentActivities(sessions, box),
                recording_assets=RecordingAssetActivities(sessions, store),
                transcription=TranscriptionActivities(sessions, store, lambda: get_whisper_engine(cpu_threads=threads)),
                retention=RetentionActivities(sessions, store),
                sessions=sessions,
                flows=FlowActivities(sessions),
                flow_webhooks=FlowWebhookActivities(http),
            )
        finally:
            if livekit is not None:
                await livekit.aclose()
            await engine.dispose()


def build_worker(client: Client, settings: Settings, clients: ActivityClients) -> WorkerGroup:
    return WorkerGroup(build_main_worker(client, settings, clients), build_pacer_worker(client, settings))


def build_main_worker(client: Client, settings: Settings, clients: ActivityClients) -> Worker:
    activities = clients.activities()
    if clients.sessions is not None:  # campaigns hang calls up through the typed call client
        activities += campaign_activities(CampaignActivities(clients.sessions, CallClient(client, settings.task_queue)))
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        workflow_runner=workflow_runner(),
        activities=[*activities, *client_activities(client, settings)],
        # A replacement worker picks up a crashed one's workflows quickly instead of waiting ~10 s.
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=3),
        # Bounds the worker's memory however many calls are open (bench/concurrency.py).
        max_cached_workflows=settings.worker_max_cached_workflows,
    )


async def run_worker(settings: Settings) -> None:
    client = await Client.connect(
        settings.temporal_address, namespace=settings.temporal_namespace, data_converter=DATA_CONVERTER
    )
    async with activity_clients(settings, client) as clients:
        await ensure_retention_schedule(client, settings.task_queue)
        worker = build_worker(client, settings, clients)
        log.info("worker polling", extra={"task_queue": settings.task_queue})
        try:
            await worker.run()
        except asyncio.CancelledError:
            log.info("worker stopping")
            raise
