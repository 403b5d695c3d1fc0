"""API schemas of campaigns and the do-not-call list (the workflow's own types are in models/campaigns.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, Field, model_validator

from models.calls import AmdOptions
from models.campaigns import CallingWindow, CampaignLimits, limits_problem
from models.enums import AttemptResult, CampaignStatus, ContactOutcome, ContactStatus, MachinePolicy
from models.schemas.common import E164, Name, OutSchema, Ref, Schema

HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$"


class WindowIn(Schema):
    start: str = Field(default="09:00", pattern=HHMM, description="Local time HH:MM, inclusive")
    end: str = Field(default="18:00", pattern=HHMM, description="Local time HH:MM, exclusive")
    days: list[int] = Field(default=[1, 2, 3, 4, 5], min_length=1, max_length=7, description="ISO weekdays, Mon = 1")


class LimitsIn(Schema):
    max_concurrent: int = Field(default=5, ge=1, le=1000)
    calls_per_second: float = Field(default=1.0, gt=0, le=100)
    window: WindowIn | None = Field(default=None, description="In each contact's local time; none: any time")
    max_attempts: int = Field(default=3, ge=1, le=20)
    backoff_seconds: dict[Literal["no-answer", "busy", "failed", "machine"], float] | None = Field(
        default=None, description="First wait after each result before the next attempt (doubled each time)"
    )
    backoff_multiplier: float = Field(default=2.0, ge=1, le=10)
    ends_at: AwareDatetime | None = None
    default_time_zone: str = Field(default="UTC", max_length=64)

    @model_validator(mode="after")
    def _usable(self) -> LimitsIn:
        problem = limits_problem(self.to_limits())
        if problem is not None:
            raise ValueError(problem)
        return self

    def to_limits(self) -> CampaignLimits:
        limits = CampaignLimits(
            max_concurrent=self.max_concurrent,
            calls_per_second=self.calls_per_second,
            window=CallingWindow(self.window.start, self.window.end, sorted(set(self.window.days)))
            if self.window
            else None,
            max_attempts=self.max_attempts,
            backoff_multiplier=self.backoff_multiplier,
            ends_at=self.ends_at,
            default_time_zone=self.default_time_zone,
        )
        if self.backoff_seconds is not None:
            limits.backoff_seconds = {str(k): float(v) for k, v in self.backoff_seconds.items()}
        return limits


class AmdIn(Schema):
    policy: MachinePolicy = MachinePolicy.HANGUP
    message: str | None = Field(default=None, max_length=2000, description="leave_message: said after the beep")
    message_asset_id: Ref | None = Field(
        default=None, description="leave_message: an audio asset of the space (WAV) played after the beep instead"
    )

    @model_validator(mode="after")
    def _something_to_leave(self) -> AmdIn:
        if self.policy is MachinePolicy.LEAVE_MESSAGE and not ((self.message or "").strip() or self.message_asset_id):
            raise ValueError("leave_message needs a message or a message_asset_id")
        return self

    def to_options(self) -> AmdOptions:
        return AmdOptions(self.policy, self.message, self.message_asset_id)


class ContactCreate(Schema):
    phone: str = Field(max_length=64, description="E.164")
    name: str | None = Field(default=None, max_length=200)
    time_zone: str | None = Field(default=None, max_length=64, description="IANA zone; default: the number's")
    variables: dict[str, str] = Field(default_factory=dict, description="Passed to the agent")


class CampaignSettings(Schema):
    """Everything but the contacts (a CSV upload sends these as its ``settings`` field, JSON)."""

    name: Name
    agent_id: Ref | None = Field(default=None, description="Defaults to the agent the first from-number routes to")
    from_numbers: list[E164] = Field(min_length=1, max_length=50, description="The space's numbers, used in turn")
    limits: LimitsIn = Field(default_factory=LimitsIn)
    amd: AmdIn | None = Field(default=None, description="Answering-machine detection and what to do on a machine")


class CampaignCreate(CampaignSettings):
    contacts: list[ContactCreate] = Field(min_length=1, max_length=100_000)


class ContactsAdd(Schema):
    contacts: list[ContactCreate] = Field(min_length=1, max_length=100_000)


class CancelIn(Schema):
    hang_up: bool = Field(default=False, description="Hang up the calls in progress (else they finish)")


class RowProblemOut(OutSchema):
    line: int = Field(description="CSV line (header = 1), or position in the JSON list (first = 1)")
    reason: str


class ProgressOut(OutSchema):
    status: CampaignStatus
    total: int
    placed: int
    in_progress: int
    answered: int
    voicemail: int
    no_answer: int
    busy: int
    failed: int
    opted_out: int
    outside_window: int
    cancelled: int
    remaining: int
    next_dial_at: datetime | None = None
    current_rate: float = 0.0


class CampaignOut(OutSchema):
    id: str
    space_id: str
    name: str
    status: CampaignStatus
    workflow_id: str
    agent_id: str | None
    from_numbers: list[dict[str, str]]
    limits: dict[str, object]
    amd: dict[str, object] | None
    created_at: datetime
    finished_at: datetime | None
    progress: ProgressOut | None = None


class CampaignCreated(OutSchema):
    campaign: CampaignOut
    accepted: int
    rejected: list[RowProblemOut]


class ContactsAdded(OutSchema):
    accepted: int
    rejected: list[RowProblemOut]


class ContactOut(OutSchema):
    seq: int
    line: int | None
    e164: str
    name: str | None
    time_zone: str
    status: ContactStatus
    attempts: int
    next_attempt_at: datetime | None
    last_call_id: str | None
    last_result: AttemptResult | None
    answered_by: str | None
    outcome: ContactOutcome | None
    finished_at: datetime | None


class DoNotCallCreate(Schema):
    e164: E164
    reason: str | None = Field(default=None, max_length=200)


class DoNotCallOut(OutSchema):
    id: str
    e164: str
    reason: str | None
    created_at: datetime
