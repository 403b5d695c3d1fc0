"""Inputs and outputs of workflows and activities (dataclasses: Temporal's default converter)."""

from __future__ import annotations

from dataclasses import dataclass, field

# Workflow type names, so the API can start workflows without importing workflow code.
PROVISION_SIP_TRUNK_WORKFLOW = "ProvisionSipTrunk"
DEPROVISION_SIP_TRUNK_WORKFLOW = "DeprovisionSipTrunk"
PURCHASE_NUMBER_WORKFLOW = "PurchaseNumber"
RELEASE_NUMBER_WORKFLOW = "ReleaseNumber"

CARRIER_REJECTED = "CarrierRejected"
CARRIER_AUTH_FAILED = "CarrierAuthFailed"


def provision_workflow_id(trunk_id: str) -> str:
    return f"sip-trunk-{trunk_id}"


@dataclass
class ProvisionSipTrunkInput:
    space_id: str
    trunk_id: str


@dataclass
class ProvisionSipTrunkResult:
    trunk_id: str
    inbound_trunk_id: str
    outbound_trunk_id: str | None
    dispatch_rule_id: str


@dataclass
class DeprovisionSipTrunkInput:
    space_id: str
    trunk_id: str
    livekit_ids: list[str] = field(default_factory=list)
    dispatch_rule_ids: list[str] = field(default_factory=list)


@dataclass
class PurchaseNumberInput:
    space_id: str
    carrier_account_id: str
    e164: str | None
    area_code: str | None
    iso_country: str
    # The routing of the new number, as the API validated it (PhoneNumber column values).
    routing: dict[str, str | bool | None]


@dataclass
class PurchasedNumber:
    e164: str
    carrier_number_sid: str


@dataclass
class PurchaseNumberResult:
    phone_number_id: str
    e164: str
    carrier_number_sid: str


@dataclass
class ReleaseNumberInput:
    space_id: str
    carrier_account_id: str
    carrier_number_sid: str
