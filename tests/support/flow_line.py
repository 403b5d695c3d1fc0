"""A space whose Twilio number (media mode ``stream``) routes to a flow, on a running stack with the media-stream
server: ring it through the Twilio stand-in and open the call's media stream (for flow tests and the bench)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

import httpx
from twilio.request_validator import RequestValidator

from models import calls as c
from tests.api.resources import create
from tests.conftest import Platform, SpaceKeys, unique_e164
from tests.support.media_stream_client import TwilioMediaStream
from tests.support.stack import temporal_client
from tests.twilio_standin import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TwilioStandIn
from workflows.calls import CallWorkflow

PUBLIC = "https://telephony.example.com"
STREAM_URL = "wss://telephony.example.com/media/twilio"
HOURS = "We are open from nine in the morning to five in the afternoon, Monday to Friday."
# The agent a menu hands to: its greeting names the team the caller chose (a variable the flow gathered).
FRONT_DESK = {
    "name": "front desk",
    "greeting": "Hello, this is the {team} team.",
    "knowledge_base": [{"title": "Opening hours", "content": HOURS}],
    "tts_provider": "local-hibari",
}


def sales_or_support(name: str, **gather: Any) -> dict[str, Any]:
    """ "Press 1 for sales or 2 for support": 1 hands the caller to the agent (``"{agent_id}"``) with team=sales, 2
    says support is closed and hangs up; ``gather``: the menu's own timeout, retries, speech and no-input path."""
    menu = {
        "id": "menu",
        "type": "gather",
        "prompt": "Press 1 for sales or 2 for support.",
        "variable": "choice",
        "choices": ["1", "2"],
        **gather,
    }
    return {
        "name": name,
        "steps": [
            menu,
            {
                "id": "route",
                "type": "branch",
                "routes": [{"when": {"variable": "choice", "equals": "1"}, "goto": "sales"}],
                "default": "support",
            },
            {"id": "sales", "type": "set", "values": {"team": "sales"}, "next": "assistant"},
            {"id": "support", "type": "say", "text": "Support is closed today. Goodbye.", "next": "bye"},
            {"id": "assistant", "type": "agent", "agent_id": "{agent_id}"},
            {"id": "bye", "type": "hangup"},
        ],
    }


@dataclass
class FlowLine:
    stack: Platform
    space: SpaceKeys
    e164: str
    base_url: str
    carrier: TwilioStandIn
    agent_id: str
    flow_id: str
    number_id: str

    async def ring(self, caller: str = "+14155550142") -> dict[str, str]:
        """A call arrives at the carrier; the TwiML of its voice webhook names the stream's parameters."""
        record, response = await self.carrier.incoming_call(self.e164, caller)
        stream = ET.fromstring(response.text).find("./Connect/Stream")
        assert stream is not None, response.text
        parameters = {str(p.get("name")): str(p.get("value")) for p in stream.findall("Parameter")}
        return parameters | {"call_sid": record.sid}

    def stream(self, parameters: dict[str, str]) -> TwilioMediaStream:
        signature = RequestValidator(TEST_AUTH_TOKEN).compute_signature(STREAM_URL, {})
        return TwilioMediaStream(
            f"{self.base_url.replace('http', 'ws')}/media/twilio",
            signature=signature,
            account_sid=TEST_ACCOUNT_SID,
            parameters={k: v for k, v in parameters.items() if k != "call_sid"},
        )

    async def state(self, workflow_id: str) -> c.CallStateView:
        view: c.CallStateView = (
            await temporal_client(self.stack).get_workflow_handle(workflow_id).query(CallWorkflow.get_state)
        )
        return view


async def flow_line(
    stack: Platform, carrier: TwilioStandIn, base_url: str, document: dict[str, Any], agent: dict[str, Any]
) -> FlowLine:
    """``document``: the flow; ``"{agent_id}"`` in it is replaced by the id of the agent created from ``agent``."""
    assert stack.app is not None
    space = await stack.new_space()
    account = await create(
        stack.client,
        space,
        "carrier-accounts",
        {"name": "twilio", "account_sid": TEST_ACCOUNT_SID, "auth_token": TEST_AUTH_TOKEN},
    )
    agent_row = await create(stack.client, space, "agents", agent)
    flow = await create(stack.client, space, "flows", with_agent(document, agent_row["id"]))
    e164 = unique_e164()
    number = await create(
        stack.client,
        space,
        "phone-numbers",
        {
            "e164": e164,
            "carrier_account_id": account["id"],
            "route_type": "flow",
            "flow_id": flow["id"],
            "media_mode": "stream",
        },
    )
    carrier.add_incoming(
        TEST_ACCOUNT_SID,
        e164,
        VoiceUrl=f"{PUBLIC}/webhooks/twilio/voice",
        StatusCallback=f"{PUBLIC}/webhooks/twilio/status",
    )
    carrier.webhook_transport = httpx.ASGITransport(app=stack.app)
    return FlowLine(stack, space, e164, base_url, carrier, agent_row["id"], flow["id"], number["id"])


def with_agent(value: Any, agent_id: str) -> Any:
    """``value`` (a flow document or part of it) with ``"{agent_id}"`` replaced by ``agent_id``."""
    if isinstance(value, str):
        return value.replace("{agent_id}", agent_id)
    if isinstance(value, list):
        return [with_agent(v, agent_id) for v in value]
    if isinstance(value, dict):
        return {k: with_agent(v, agent_id) for k, v in value.items()}
    return value


def flow_steps(view: c.CallStateView) -> list[str]:
    """The flow steps a call went through, in order, from its timeline."""
    return [e.detail or "" for e in view.timeline if e.event == "flow_step"]
