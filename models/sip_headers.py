"""How a call's workflow is named across SIP hops, shared by the webhooks and the LiveKit activities.

A carrier that reaches LiveKit over SIP (Twilio's ``<Dial><Sip>``) sends the workflow id in a SIP header;
the inbound trunk maps that header to a participant attribute, which LiveKit's webhooks carry back.
Calls we dial out carry the same attribute, set when the SIP participant is created.
"""

WORKFLOW_ID_HEADER = "X-BT-Workflow-Id"
WORKFLOW_ID_ATTRIBUTE = "bivariant.workflowId"
# Which party a SIP participant we dialed is: only the call's remote party leaving ends the call.
ROLE_ATTRIBUTE = "bivariant.role"
ROLE_REMOTE_PARTY = "remote-party"
ROLE_TRANSFER_TARGET = "transfer-target"
# Data packets (JSON {"digits": "12#"}) asking the agent in a room to play DTMF tones into the call.
DTMF_TOPIC = "telephony.dtmf"
