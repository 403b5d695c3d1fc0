"""The call contract is defined once: signal, update and query names are never written as strings (or passed as
name constants) outside ``workflows/``; the workflow's handlers carry the published names; ids, metadata and the
media-stream route round-trip through the one module that defines them."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.fernet import Fernet
from temporalio.workflow import _QueryDefinition, _SignalDefinition

from models import calls as c
from models import recordings as rec
from models import sms, sms_pacing
from models.call_contract import (
    MEDIA_STREAM_PATH,
    DispatchMetadata,
    MetadataError,
    RoomMetadata,
    belongs_to,
    call_workflow_id,
    media_stream_url,
    space_of_workflow,
    stream_token,
    stream_token_valid,
)
from models.enums import CallDirection
from models.secret_box import SecretBox
from voice.media_stream.router import router as media_stream_router
from workflows.calls import CallWorkflow

ROOT = Path(__file__).resolve().parents[2]
NAMES: dict[str, Any] = {
    c.SIGNAL_CONNECTED: CallWorkflow.connected,
    c.SIGNAL_ACTIVE: CallWorkflow.active,
    c.SIGNAL_CARRIER_STATUS: CallWorkflow.carrier_status,
    c.SIGNAL_DTMF_RECEIVED: CallWorkflow.dtmf_received,
    c.SIGNAL_HANGUP_RECEIVED: CallWorkflow.hangup_received,
    c.SIGNAL_TURN_METRICS: CallWorkflow.turn_metrics,
    c.SIGNAL_AGENT_LEFT: CallWorkflow.agent_left,
    rec.SIGNAL_RECORDING_UPDATE: CallWorkflow.recording_update,
    c.UPDATE_HOLD: CallWorkflow.hold,
    c.UPDATE_RESUME: CallWorkflow.resume,
    c.UPDATE_TRANSFER: CallWorkflow.transfer,
    c.UPDATE_SEND_DTMF: CallWorkflow.send_dtmf,
    c.UPDATE_HANGUP: CallWorkflow.hangup,
    c.UPDATE_ATTACH_MEDIA: CallWorkflow.attach_media,
    c.UPDATE_STREAM_ENDED: CallWorkflow.stream_ended,
    c.UPDATE_PAUSE_RECORDING: CallWorkflow.pause_recording,
    c.UPDATE_RESUME_RECORDING: CallWorkflow.resume_recording,
    c.UPDATE_REPORT_RECORDING_CONSENT: CallWorkflow.report_recording_consent,
    c.UPDATE_REPORT_ANSWERED_BY: CallWorkflow.report_answered_by,
    c.UPDATE_VOICEMAIL_LEFT: CallWorkflow.voicemail_left,
    c.QUERY_GET_STATE: CallWorkflow.get_state,
}
CONSTANTS = {
    name
    for module in (c, rec, sms, sms_pacing)
    for name in dir(module)
    if name.startswith(("SIGNAL_", "UPDATE_", "QUERY_")) and isinstance(getattr(module, name), str)
}
SENDERS = {"signal", "execute_update", "start_update", "query"}


def test_the_workflow_handlers_carry_the_published_names() -> None:
    for name, handler in NAMES.items():
        update = getattr(handler, "_defn", None)  # what @workflow.update leaves on the method
        definition = update or _SignalDefinition.from_fn(handler) or _QueryDefinition.from_fn(handler)
        assert definition is not None and definition.name == name, handler


def _offences(path: Path) -> list[str]:
    """Signal/update/query names sent by string: a literal or a name constant as the handler argument."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        arguments = list(node.args[:1]) if called in SENDERS else []
        arguments += [k.value for k in node.keywords if k.arg in ("start_signal", "signal", "update", "query")]
        for argument in arguments:
            literal = isinstance(argument, ast.Constant) and argument.value in NAMES
            constant = (isinstance(argument, ast.Attribute) and argument.attr in CONSTANTS) or (
                isinstance(argument, ast.Name) and argument.id in CONSTANTS
            )
            if literal or constant:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_no_signal_update_or_query_is_named_by_string_outside_workflows() -> None:
    sources = [
        p
        for folder in ("api", "voice", "activities", "workers", "bench", "tests")
        for p in (ROOT / folder).rglob("*.py")
    ]
    offences = [o for path in sources for o in _offences(path)]
    assert offences == [], "use the typed call client (workflows.call_client) or CallWorkflow.<method>"


def test_the_check_above_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text('await handle.signal("hangup_received", event)\nawait h.execute_update(c.UPDATE_HOLD, r)\n')
    assert len(_offences_in(bad)) == 2


def _offences_in(path: Path) -> list[str]:
    global ROOT
    saved, ROOT = ROOT, path.parent
    try:
        return _offences(path)
    finally:
        ROOT = saved


def test_ids_carry_their_space() -> None:
    workflow_id = call_workflow_id("sp_abc", "CA0123")
    assert space_of_workflow(workflow_id) == "sp_abc"
    assert (
        belongs_to(workflow_id, "sp_abc")
        and not belongs_to(workflow_id, "sp_other")
        and not belongs_to(workflow_id, None)
    )
    assert space_of_workflow(call_workflow_id(None, "SCL_1")) is None and space_of_workflow("sms-x") is None


def test_metadata_round_trips_and_refuses_what_is_not_ours() -> None:
    room = RoomMetadata("call-sp_a-CA1", "call_1", "sp_a", CallDirection.OUTBOUND)
    assert RoomMetadata.decode(room.encode()) == room
    dispatch = DispatchMetadata("call-sp_a-CA1", "call_1", "sp_a", "ag_1", None)
    assert DispatchMetadata.decode(dispatch.encode()) == dispatch
    for raw in ("", "[]", "{}", '{"workflow_id": 5}', "not json", '{"workflow_id": "w", "call_id": "c"}'):
        with pytest.raises(MetadataError):
            DispatchMetadata.decode(raw)
    with pytest.raises(MetadataError):
        RoomMetadata.decode('{"workflow_id": "w", "call_id": "c", "direction": "sideways"}')


def test_the_stream_url_is_the_route_the_media_server_answers() -> None:
    url = media_stream_url("https://telephony.example.com/base/")
    assert url == f"wss://telephony.example.com/base{MEDIA_STREAM_PATH}"
    assert urlsplit(url).path.endswith(MEDIA_STREAM_PATH)
    assert [route.path for route in media_stream_router.routes] == [MEDIA_STREAM_PATH]  # type: ignore[attr-defined]


def test_stream_tokens_bind_one_call_for_a_while() -> None:
    box = SecretBox([Fernet.generate_key().decode()])
    token = stream_token(box, "call-sp_a-CA1", now=1_000)
    assert stream_token_valid(box, "call-sp_a-CA1", token, now=1_100)
    assert not stream_token_valid(box, "call-sp_a-CA2", token, now=1_100)  # another call
    assert not stream_token_valid(box, "call-sp_a-CA1", token, now=10_000)  # expired
    assert not stream_token_valid(SecretBox([Fernet.generate_key().decode()]), "call-sp_a-CA1", token, now=1_100)
    for forged in ("", "abc", "99999999999.x", "١٢٣.x", token + "x"):
        assert not stream_token_valid(box, "call-sp_a-CA1", forged, now=1_100)


def test_a_flow_dispatch_names_no_agent_and_agent_dispatches_are_unchanged() -> None:
    flow = DispatchMetadata("call-sp_a-CA1", "call_1", "sp_a", "", flow=True)
    assert DispatchMetadata.decode(flow.encode()) == flow
    assert '"flow"' not in DispatchMetadata("call-sp_a-CA1", "call_1", "sp_a", "ag_1").encode()  # dispatch dedupe
    with pytest.raises(MetadataError, match="agent_id"):
        DispatchMetadata.decode('{"workflow_id": "w", "call_id": "c", "space_id": "s"}')
