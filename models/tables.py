"""SQLAlchemy 2 tables. Every tenant-owned row carries ``space_id``; queries always filter on it."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from models.assets import AssetAction, AssetStatus
from models.consent import RecordingConsent
from models.enums import (
    AssetType,
    AttemptResult,
    CallDirection,
    CallState,
    CampaignStatus,
    CarrierProvider,
    Channel,
    ContactOutcome,
    ContactStatus,
    ConversationStatus,
    EndReason,
    MediaMode,
    MessageRole,
    ProvisioningStatus,
    RecordingPolicy,
    Role,
    RouteType,
    SipTransport,
)

ID_PREFIXES = {
    "spaces": "sp",
    "api_keys": "key",
    "carrier_accounts": "ca",
    "sip_trunks": "trk",
    "phone_numbers": "pn",
    "agents": "ag",
    "conversations": "cv",
    "messages": "msg",
    "calls": "call",
    "assets": "as",
    "sms_opt_outs": "oo",
    "asset_audits": "aud",
    "campaigns": "cmp",
    "do_not_call": "dnc",
    "flows": "fl",
    "flow_versions": "flv",
}


def new_id(table: str) -> str:
    return f"{ID_PREFIXES[table]}_{uuid.uuid4().hex}"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite would hand back naive ones)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    # Enums are stored as their string values in VARCHAR columns: no native PostgreSQL enum types to
    # migrate, and the same schema on SQLite and PostgreSQL.
    type_annotation_map = {
        enum.Enum: sa.Enum(enum.Enum, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e]),
        dict[str, Any]: sa.JSON,
        list[Any]: sa.JSON,
        datetime: UtcDateTime(),
    }
    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


def _id(table: str) -> Mapped[str]:
    return mapped_column(sa.String(40), primary_key=True, default=lambda: new_id(table))


def _space_fk() -> Mapped[str]:
    return mapped_column(sa.ForeignKey("spaces.id", ondelete="CASCADE"), index=True)


def _created() -> Mapped[datetime]:
    return mapped_column(default=utcnow)


def _updated() -> Mapped[datetime]:
    return mapped_column(default=utcnow, onupdate=utcnow)


class Space(Base):
    __tablename__ = "spaces"
    id: Mapped[str] = _id("spaces")
    name: Mapped[str] = mapped_column(sa.String(200))
    call_settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()
    # Recording consent (models/consent.py) and whether time on hold is recorded (migration 0008).
    recording_consent: Mapped[RecordingConsent] = mapped_column(
        default=RecordingConsent.NONE, server_default=RecordingConsent.NONE.value
    )
    recording_announcement: Mapped[str | None] = mapped_column(sa.String(500))
    record_hold: Mapped[bool] = mapped_column(default=False, server_default=sa.false())


class ApiKey(Base):
    """An API key; only a hash of its secret is stored. ``space_id`` NULL marks a platform key."""

    __tablename__ = "api_keys"
    id: Mapped[str] = _id("api_keys")
    space_id: Mapped[str | None] = mapped_column(sa.ForeignKey("spaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[Role]
    prefix: Mapped[str] = mapped_column(sa.String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(sa.String(64))
    person_email: Mapped[str | None] = mapped_column(sa.String(320))
    created_at: Mapped[datetime] = _created()
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    @property
    def service_account(self) -> bool:
        return self.person_email is None


class CarrierAccount(Base):
    __tablename__ = "carrier_accounts"
    __table_args__ = (sa.UniqueConstraint("space_id", "provider", "account_sid"),)
    id: Mapped[str] = _id("carrier_accounts")
    space_id: Mapped[str] = _space_fk()
    name: Mapped[str] = mapped_column(sa.String(200))
    provider: Mapped[CarrierProvider]
    account_sid: Mapped[str] = mapped_column(sa.String(64))
    secret_encrypted: Mapped[str] = mapped_column(sa.Text)
    cps: Mapped[float | None]  # calls per second placed through the account (all campaigns together); NULL: no limit
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class SipTrunk(Base):
    __tablename__ = "sip_trunks"
    id: Mapped[str] = _id("sip_trunks")
    space_id: Mapped[str] = _space_fk()
    name: Mapped[str] = mapped_column(sa.String(200))
    sip_address: Mapped[str] = mapped_column(sa.String(255))
    transport: Mapped[SipTransport]
    auth_username: Mapped[str | None] = mapped_column(sa.String(128))
    auth_password_encrypted: Mapped[str | None] = mapped_column(sa.Text)
    allowed_cidrs: Mapped[list[Any]] = mapped_column(default=list)
    codecs: Mapped[list[Any]] = mapped_column(default=list)
    provisioning_status: Mapped[ProvisioningStatus] = mapped_column(default=ProvisioningStatus.PENDING)
    provisioning_error: Mapped[str | None] = mapped_column(sa.Text)
    config_version: Mapped[int] = mapped_column(default=1)
    livekit_inbound_trunk_id: Mapped[str | None] = mapped_column(sa.String(64))
    livekit_outbound_trunk_id: Mapped[str | None] = mapped_column(sa.String(64))
    livekit_dispatch_rule_id: Mapped[str | None] = mapped_column(sa.String(64))
    provisioned_at: Mapped[datetime | None]
    cps: Mapped[float | None]  # calls per second dialled out through the trunk (all campaigns together); NULL: no limit
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Agent(Base):
    __tablename__ = "agents"
    id: Mapped[str] = _id("agents")
    space_id: Mapped[str] = _space_fk()
    name: Mapped[str] = mapped_column(sa.String(200))
    instructions: Mapped[str] = mapped_column(sa.Text, default="")
    greeting: Mapped[str] = mapped_column(sa.Text, default="")
    knowledge_base: Mapped[list[Any]] = mapped_column(default=list)
    voice: Mapped[str] = mapped_column(sa.String(64), default="heart")
    stt_provider: Mapped[str] = mapped_column(sa.String(64), default="local-whisper")
    tts_provider: Mapped[str] = mapped_column(sa.String(64), default="local-hibari")
    llm_provider: Mapped[str] = mapped_column(sa.String(64), default="local-kb")
    llm_model: Mapped[str | None] = mapped_column(sa.String(128))
    llm_base_url: Mapped[str | None] = mapped_column(sa.String(500))
    llm_api_key_encrypted: Mapped[str | None] = mapped_column(sa.Text)
    transfer_target: Mapped[str | None] = mapped_column(sa.String(300))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class PhoneNumber(Base):
    __tablename__ = "phone_numbers"
    id: Mapped[str] = _id("phone_numbers")
    space_id: Mapped[str] = _space_fk()
    e164: Mapped[str] = mapped_column(sa.String(16), unique=True)
    friendly_name: Mapped[str | None] = mapped_column(sa.String(200))
    sip_trunk_id: Mapped[str | None] = mapped_column(sa.ForeignKey("sip_trunks.id", ondelete="RESTRICT"), index=True)
    carrier_account_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("carrier_accounts.id", ondelete="RESTRICT"), index=True
    )
    carrier_number_sid: Mapped[str | None] = mapped_column(sa.String(64))
    route_type: Mapped[RouteType]
    agent_id: Mapped[str | None] = mapped_column(sa.ForeignKey("agents.id", ondelete="RESTRICT"), index=True)
    flow_id: Mapped[str | None] = mapped_column(sa.String(128))
    media_mode: Mapped[MediaMode]
    recording_policy: Mapped[RecordingPolicy]
    sms_enabled: Mapped[bool] = mapped_column(default=False)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (sa.Index("ix_conversations_lookup", "phone_number_id", "external_party", "status"),)
    id: Mapped[str] = _id("conversations")
    space_id: Mapped[str] = _space_fk()
    channel: Mapped[Channel]
    phone_number_id: Mapped[str | None] = mapped_column(sa.ForeignKey("phone_numbers.id", ondelete="SET NULL"))
    agent_id: Mapped[str | None] = mapped_column(sa.ForeignKey("agents.id", ondelete="SET NULL"))
    external_party: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[ConversationStatus] = mapped_column(default=ConversationStatus.OPEN)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()
    closed_at: Mapped[datetime | None]


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (sa.Index("ix_messages_conversation_created", "conversation_id", "created_at"),)
    id: Mapped[str] = _id("messages")
    space_id: Mapped[str] = _space_fk()
    conversation_id: Mapped[str] = mapped_column(sa.ForeignKey("conversations.id", ondelete="CASCADE"))
    call_id: Mapped[str | None] = mapped_column(sa.String(40))
    role: Mapped[MessageRole]
    source: Mapped[str] = mapped_column(sa.String(32))
    text: Mapped[str] = mapped_column(sa.Text)
    dedupe_key: Mapped[str | None] = mapped_column(sa.String(200), unique=True)
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()
    # SMS messages (migration 0006); NULL for call transcripts.
    direction: Mapped[str | None] = mapped_column(sa.String(16))
    delivery_status: Mapped[str | None] = mapped_column(sa.String(16))
    error_code: Mapped[int | None]
    carrier_message_sid: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    segments: Mapped[int | None]
    media_urls: Mapped[list[Any] | None] = mapped_column(sa.JSON)


class SmsThread(Base):
    """One SMS thread (space + our number + the other party); its id is the thread's workflow id."""

    __tablename__ = "sms_threads"
    __table_args__ = (sa.UniqueConstraint("phone_number_id", "party"),)
    id: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    space_id: Mapped[str] = _space_fk()
    phone_number_id: Mapped[str] = mapped_column(sa.ForeignKey("phone_numbers.id", ondelete="CASCADE"))
    our_number: Mapped[str] = mapped_column(sa.String(16))
    party: Mapped[str] = mapped_column(sa.String(64))
    conversation_id: Mapped[str | None] = mapped_column(sa.ForeignKey("conversations.id", ondelete="SET NULL"))
    last_message_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class SmsOptOut(Base):
    """A party that sent STOP to one of the space's numbers; START deletes the row."""

    __tablename__ = "sms_opt_outs"
    __table_args__ = (sa.UniqueConstraint("phone_number_id", "party"),)
    id: Mapped[str] = _id("sms_opt_outs")
    space_id: Mapped[str] = _space_fk()
    phone_number_id: Mapped[str] = mapped_column(sa.ForeignKey("phone_numbers.id", ondelete="CASCADE"))
    party: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = _created()


class Call(Base):
    __tablename__ = "calls"
    __table_args__ = (sa.Index("ix_calls_space_created", "space_id", "created_at"),)
    id: Mapped[str] = _id("calls")
    space_id: Mapped[str] = _space_fk()
    workflow_id: Mapped[str] = mapped_column(sa.String(200), unique=True)
    carrier_call_id: Mapped[str | None] = mapped_column(sa.String(128))
    direction: Mapped[CallDirection]
    from_number: Mapped[str] = mapped_column(sa.String(64))
    to_number: Mapped[str] = mapped_column(sa.String(64))
    state: Mapped[CallState]
    end_reason: Mapped[EndReason | None]
    phone_number_id: Mapped[str | None] = mapped_column(sa.ForeignKey("phone_numbers.id", ondelete="SET NULL"))
    agent_id: Mapped[str | None] = mapped_column(sa.ForeignKey("agents.id", ondelete="SET NULL"))
    conversation_id: Mapped[str | None] = mapped_column(sa.ForeignKey("conversations.id", ondelete="SET NULL"))
    room_name: Mapped[str | None] = mapped_column(sa.String(128), index=True)
    created_at: Mapped[datetime] = _created()
    connected_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = _updated()


class Asset(Base):
    __tablename__ = "assets"
    id: Mapped[str] = _id("assets")
    space_id: Mapped[str] = _space_fk()
    call_id: Mapped[str | None] = mapped_column(sa.ForeignKey("calls.id", ondelete="SET NULL"))
    conversation_id: Mapped[str | None] = mapped_column(sa.ForeignKey("conversations.id", ondelete="SET NULL"))
    type: Mapped[AssetType]
    storage_key: Mapped[str] = mapped_column(sa.String(500), unique=True)
    content_type: Mapped[str] = mapped_column(sa.String(100))
    size_bytes: Mapped[int | None] = mapped_column(sa.BigInteger)
    sha256: Mapped[str | None] = mapped_column(sa.String(64))
    retention_until: Mapped[datetime | None] = mapped_column(index=True)
    created_at: Mapped[datetime] = _created()
    # What produced it, once: "call:<id>:stereo" or "egress:<id>" (a retried activity finds its own row).
    source_key: Mapped[str | None] = mapped_column(sa.String(200), unique=True)
    status: Mapped[AssetStatus] = mapped_column(default=AssetStatus.STORED)
    duration_seconds: Mapped[float | None]
    channel_layout: Mapped[str | None] = mapped_column(sa.String(64))
    paused_spans: Mapped[list[Any]] = mapped_column(default=list)
    legal_hold: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(sa.Text)
    deleted_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = _updated()
    name: Mapped[str | None] = mapped_column(sa.String(200))  # an uploaded asset's name (default: its file name)
    sample_rate: Mapped[int | None]  # of the stored audio (uploads: converted to mono PCM16 WAV)


class AssetAudit(Base):
    """Who did what to an asset, when: creation, every download (or download URL issued), deletion."""

    __tablename__ = "asset_audits"
    __table_args__ = (sa.Index("ix_asset_audits_asset_created", "asset_id", "created_at"),)
    id: Mapped[str] = _id("asset_audits")
    space_id: Mapped[str] = _space_fk()
    asset_id: Mapped[str] = mapped_column(sa.ForeignKey("assets.id", ondelete="CASCADE"))
    action: Mapped[AssetAction]
    actor: Mapped[str] = mapped_column(sa.String(200))  # an API key id, "retention", "worker"
    detail: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = _created()


class RetentionPolicy(Base):
    """A space's retention: days a recording (and its transcript messages) are kept; NULL keeps them."""

    __tablename__ = "retention_policies"
    space_id: Mapped[str] = mapped_column(sa.ForeignKey("spaces.id", ondelete="CASCADE"), primary_key=True)
    recording_days: Mapped[int | None]
    transcript_days: Mapped[int | None]
    updated_at: Mapped[datetime] = _updated()


class WebhookEvent(Base):
    """Ids of webhook events already handed to Temporal, so a redelivered event is processed once."""

    __tablename__ = "webhook_events"
    id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    source: Mapped[str] = mapped_column(sa.String(32))
    received_at: Mapped[datetime] = _created()


# ------------------------------------------------------------------------------------------ campaigns
class Campaign(Base):
    """An outbound campaign; its progress lives in its ``CampaignWorkflow``, its contacts in the table below."""

    __tablename__ = "campaigns"
    __table_args__ = (sa.Index("ix_campaigns_space_created", "space_id", "created_at"),)
    id: Mapped[str] = _id("campaigns")
    space_id: Mapped[str] = _space_fk()
    name: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[CampaignStatus]
    workflow_id: Mapped[str] = mapped_column(sa.String(200), unique=True)
    agent_id: Mapped[str | None] = mapped_column(sa.ForeignKey("agents.id", ondelete="SET NULL"))
    flow_id: Mapped[str | None] = mapped_column(sa.String(64))
    from_numbers: Mapped[list[Any]]  # [{"phone_number_id", "e164", "media_mode"}]
    limits: Mapped[dict[str, Any]]
    amd: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = _created()
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = _updated()


class CampaignContact(Base):
    """One contact of a campaign: its queue state, attempts and final outcome. ``seq`` orders the dialling and
    pages the workflow through the list; ``claim`` makes a retried claim return the same contacts."""

    __tablename__ = "campaign_contacts"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "seq"),
        sa.UniqueConstraint("campaign_id", "e164", name="uq_campaign_contacts_campaign_e164"),
        sa.Index("ix_campaign_contacts_queue", "campaign_id", "status", "next_attempt_at"),
        sa.Index("ix_campaign_contacts_claim", "campaign_id", "claim"),
    )
    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"))
    space_id: Mapped[str] = _space_fk()
    seq: Mapped[int]
    line: Mapped[int | None]  # the CSV line it came from
    e164: Mapped[str] = mapped_column(sa.String(64))
    name: Mapped[str | None] = mapped_column(sa.String(200))
    variables: Mapped[dict[str, Any]]
    time_zone: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[ContactStatus]
    claim: Mapped[int | None]
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    last_call_id: Mapped[str | None] = mapped_column(sa.String(40))
    last_result: Mapped[AttemptResult | None]
    answered_by: Mapped[str | None] = mapped_column(sa.String(16))
    outcome: Mapped[ContactOutcome | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = _updated()


class DoNotCall(Base):
    """A number the space must never dial (checked right before every campaign dial)."""

    __tablename__ = "do_not_call"
    __table_args__ = (sa.UniqueConstraint("space_id", "e164", name="uq_do_not_call_space_e164"),)
    id: Mapped[str] = _id("do_not_call")
    space_id: Mapped[str] = _space_fk()
    e164: Mapped[str] = mapped_column(sa.String(64))
    reason: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = _created()


class Flow(Base):
    """A flow (IVR call script) of a space; its document lives in immutable versions, ``version`` is the current."""

    __tablename__ = "flows"
    id: Mapped[str] = _id("flows")
    space_id: Mapped[str] = _space_fk()
    name: Mapped[str] = mapped_column(sa.String(200))
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class FlowVersion(Base):
    """One immutable version of a flow's document: a call keeps the version it started with."""

    __tablename__ = "flow_versions"
    __table_args__ = (sa.UniqueConstraint("flow_id", "version"),)
    id: Mapped[str] = _id("flow_versions")
    space_id: Mapped[str] = _space_fk()
    flow_id: Mapped[str] = mapped_column(sa.ForeignKey("flows.id", ondelete="CASCADE"), index=True)
    version: Mapped[int]
    document: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = _created()
