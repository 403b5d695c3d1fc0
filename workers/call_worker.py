"""The call role (``telephony worker --role calls``): ``CallWorkflow``, campaigns, numbers, provisioning and
retention with their activities on the platform's task queue, and the pacers on theirs.

It holds every open call, so it stays small: nothing here imports livekit-agents, onnxruntime, faster-whisper
or av (SMS threads and transcriptions run in the speech role, ``workers.speech_worker``;
``tests/workers/test_worker_roles.py`` checks it)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker, WorkflowRunner

from activities.calls import CallRecordActivities
from activities.campaigns import CampaignActivities, campaign_activities
from activities.carrier_calls import CarrierCallActivities
from activities.carrier_numbers import CarrierNumberActivities
from activities.dial_pacing import DialPacingActivities, DialSlots
from activities.flow_webhooks import FlowWebhookActivities
from activities.flows import FlowActivities
from activities.livekit_rooms import LiveKitRoomActivities
from activities.livekit_sip import SipTrunkActivities
from activities.recording_assets import RecordingAssetActivities
from activities.recordings import RecordingActivities
from activities.retention import RetentionActivities
from models.settings import Settings
from models.task_queues import sms_pacer_task_queue
from workers.worker_clients import WorkerClients
from workflows.call_client import CallClient
from workflows.calls import CallWorkflow
from workflows.campaign import CampaignWorkflow
from workflows.dial_pacer import DialPacerWorkflow
from workflows.dial_pacer_client import DialPacerClient
from workflows.numbers import PurchaseNumberWorkflow, ReleaseNumberWorkflow
from workflows.provisioning import DeprovisionSipTrunkWorkflow, ProvisionSipTrunkWorkflow
from workflows.retention import RetentionWorkflow
from workflows.sandbox import call_workflow_runner, workflow_runner
from workflows.sms_pacer import SmsPacerWorkflow

CALL_WORKFLOWS = [
    CallWorkflow,
    ProvisionSipTrunkWorkflow,
    DeprovisionSipTrunkWorkflow,
    PurchaseNumberWorkflow,
    ReleaseNumberWorkflow,
    RetentionWorkflow,
    CampaignWorkflow,
]
PACER_WORKFLOWS = [SmsPacerWorkflow, DialPacerWorkflow]


def dial_slots(client: Client | None, settings: Settings) -> DialSlots | None:
    return DialSlots(DialPacerClient(client, settings.task_queue)) if client is not None else None


@dataclass
class CallActivityClients:
    sip_trunks: SipTrunkActivities
    carrier_numbers: CarrierNumberActivities
    call_records: CallRecordActivities
    rooms: LiveKitRoomActivities
    carrier_calls: CarrierCallActivities
    recordings: RecordingActivities
    recording_assets: RecordingAssetActivities
    retention: RetentionActivities
    flows: FlowActivities
    flow_webhooks: FlowWebhookActivities
    sessions: async_sessionmaker[AsyncSession]  # campaign activities get theirs in build_call_worker

    @classmethod
    def build(cls, clients: WorkerClients, settings: Settings, temporal: Client | None = None) -> CallActivityClients:
        """``temporal``: the activities that talk to workflows get it (the carrier keeps its accounts'
        calls-per-second limits through their dial pacers)."""
        sessions = clients.sessions
        return cls(
            sip_trunks=SipTrunkActivities(sessions, clients.box, clients.livekit),
            carrier_numbers=CarrierNumberActivities(clients.carriers),
            call_records=CallRecordActivities(sessions),
            rooms=LiveKitRoomActivities(clients.livekit, settings.livekit_agent_name),
            carrier_calls=CarrierCallActivities(clients.carriers, dial_slots(temporal, settings)),
            recordings=RecordingActivities(clients.livekit, settings),
            recording_assets=RecordingAssetActivities(sessions, clients.store),
            retention=RetentionActivities(sessions, clients.store),
            flows=FlowActivities(sessions),
            flow_webhooks=FlowWebhookActivities(clients.http),
            sessions=sessions,
        )

    def activities(self) -> list[Callable[..., Any]]:
        return [
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


def build_call_worker(
    client: Client,
    settings: Settings,
    clients: CallActivityClients,
    max_cached_workflows: int | None = None,
    runner: WorkflowRunner | None = None,
    beside: Sequence[type | Callable[..., Any]] = (),
) -> Worker:
    """``max_cached_workflows`` and ``runner``: the knobs ``bench/_worker.py`` compares (defaults: production's).
    ``beside``: more workflows and activities on the platform's queue (``workers.worker``, role ``all``)."""
    slots = dial_slots(client, settings)
    assert slots is not None
    # Campaigns hang calls up through the typed call client.
    campaigns = campaign_activities(CampaignActivities(clients.sessions, CallClient(client, settings.task_queue)))
    cached = settings.worker_max_cached_workflows if max_cached_workflows is None else max_cached_workflows
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[*CALL_WORKFLOWS, *(w for w in beside if isinstance(w, type))],
        workflow_runner=runner or call_workflow_runner(settings.workflow_sandbox),
        activities=[
            *clients.activities(),
            *campaigns,
            DialPacingActivities(slots).reserve_dial_slot,
            *(a for a in beside if not isinstance(a, type)),
        ],
        # A replacement worker picks up a crashed one's workflows quickly instead of waiting ~10 s.
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=3),
        # Bounds the worker's memory however many calls are open (bench/concurrency.py).
        max_cached_workflows=cached,
    )


def build_pacer_worker(client: Client, settings: Settings) -> Worker:
    """Pacers (SMS numbers, dial routes) poll a task queue of their own: a pacer answers every send or dial of its
    resource, so its workflow tasks must not wait behind those of hundreds of busy threads or calls (bench/sms.py)."""
    return Worker(
        client,
        task_queue=sms_pacer_task_queue(settings.task_queue),
        workflows=PACER_WORKFLOWS,
        workflow_runner=workflow_runner(),
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=3),
        max_cached_workflows=200,
    )
