"""A call over LiveKit SIP, end to end: signed LiveKit webhooks start it, the REST API controls it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf.json_format import MessageToJson
from livekit.protocol.models import ParticipantInfo
from temporalio.testing import WorkflowEnvironment

from models import calls as c
from models.call_contract import DispatchMetadata, RoomMetadata
from models.consent import ConsentOutcome, ConsentReport
from models.enums import Role
from tests.api.resources import agent_body, create, sip_trunk_body
from tests.conftest import Platform, SpaceKeys, unique_e164
from tests.livekit_standin import LiveKitStandIn, build_event, sign
from tests.support.stack import eventually, livekit_settings, running_stack, serve_http, temporal_client
from workflows.call_client import CallActionRefused, CallClient
from workflows.calls import CallWorkflow


@dataclass
class Line:
    space: SpaceKeys
    e164: str
    agent_id: str
    inbound_trunk_id: str


@pytest.fixture
async def stack(
    temporal_env: WorkflowEnvironment, livekit_standin: LiveKitStandIn, tmp_path: Path
) -> AsyncIterator[tuple[Platform, str]]:
    async with running_stack(
        temporal_env,
        tmp_path,
        **livekit_settings(livekit_standin),
    ) as platform:
        assert platform.app is not None
        async with serve_http(platform.app) as base_url:
            livekit_standin.webhook_url = f"{base_url}/webhooks/livekit"
            livekit_standin.auto_webhooks = True
            yield platform, base_url


async def _line(platform: Platform) -> Line:
    space = await platform.new_space()
    trunk = await create(platform.client, space, "sip-trunks", sip_trunk_body())
    agent = await create(platform.client, space, "agents", agent_body())
    e164 = unique_e164()
    ported = await platform.client.post(
        space.path("/phone-numbers/port"),
        json={"e164": e164, "sip_trunk_id": trunk["id"], "agent_id": agent["id"]},
        headers=space.admin,
    )
    assert ported.status_code == 201

    async def provisioned() -> str | None:
        got = (await platform.client.get(space.path(f"/sip-trunks/{trunk['id']}"), headers=space.admin)).json()
        ok = got["provisioning"]["status"] == "provisioned" and got["provisioning"]["livekit_outbound_trunk_id"]
        return got["provisioning"]["livekit_inbound_trunk_id"] if ok else None

    return Line(space, e164, agent["id"], await eventually(provisioned))


async def _the_call(platform: Platform, space: SpaceKeys) -> dict[str, Any]:
    async def listed() -> dict[str, Any] | None:
        rows = (await platform.client.get(space.path("/calls"), headers=space.viewer)).json()["data"]
        return rows[0] if rows else None

    return await eventually(listed)


async def _detail(platform: Platform, space: SpaceKeys, call_id: str) -> dict[str, Any]:
    response = await platform.client.get(space.path(f"/calls/{call_id}"), headers=space.viewer)
    assert response.status_code == 200, response.text
    detail: dict[str, Any] = response.json()
    return detail


async def test_inbound_sip_call_from_ringing_to_ended(
    stack: tuple[Platform, str], livekit_standin: LiveKitStandIn
) -> None:
    platform, _ = stack
    line = await _line(platform)
    space = line.space
    caller = await livekit_standin.add_sip_caller(
        "call-room-1", "+14155550199", line.e164, trunk_id=line.inbound_trunk_id
    )

    # participant_joined → the workflow routes the call and dispatches the space's agent into the room.
    async def dispatched() -> Any:
        found = [d for d in livekit_standin.calls("CreateDispatch") if d.room == "call-room-1"]
        return found[0] if found else None

    dispatch = await eventually(dispatched)
    row = await _the_call(platform, space)
    # The dispatch the workflow wrote is what the voice worker decodes.
    assert DispatchMetadata.decode(dispatch.metadata) == DispatchMetadata(
        row["workflow_id"], row["id"], space.id, line.agent_id, row["conversation_id"]
    )
    assert row["conversation_id"] is not None
    assert row["from_number"] == "+14155550199" and row["to_number"] == line.e164

    # The agent speaks: the voice runtime reports the call active.
    await temporal_client(platform).get_workflow_handle(row["workflow_id"]).signal(CallWorkflow.active, c.ActiveEvent())

    async def active() -> bool:
        return (await _detail(platform, space, row["id"]))["state"] == "active"

    await eventually(active)

    path = space.path(f"/calls/{row['id']}")
    held = await platform.client.post(f"{path}/hold", headers=space.as_role(Role.OPERATOR))
    assert held.status_code == 200 and held.json()["state"] == "hold" and held.json()["on_hold"]
    again = await platform.client.post(f"{path}/hold", headers=space.as_role(Role.OPERATOR))
    assert again.status_code == 409 and again.json()["detail"]
    assert (await platform.client.post(f"{path}/resume", headers=space.admin)).json()["state"] == "active"
    assert (await platform.client.post(f"{path}/hold", headers=space.viewer)).status_code == 403

    dtmf = await platform.client.post(f"{path}/dtmf", json={"digits": "12#"}, headers=space.admin)
    assert dtmf.status_code == 200, dtmf.text
    bad_dtmf = await platform.client.post(f"{path}/dtmf", json={"digits": "12x"}, headers=space.admin)
    assert bad_dtmf.status_code == 422

    livekit_standin.transfer_outcomes["tel:+14155550111"] = "busy"
    livekit_standin.transfer_outcomes["+14155550111"] = "busy"
    transfer = await platform.client.post(f"{path}/transfer", json={"target": "+14155550111"}, headers=space.admin)
    assert transfer.status_code == 200, transfer.text
    assert transfer.json()["ok"] is False and transfer.json()["state"] == "active"
    assert transfer.json()["sip_status_code"] == 486

    # The caller hangs up: participant_left ends the call; the room is deleted.
    await livekit_standin.hang_up("call-room-1", caller.identity)

    async def ended() -> dict[str, Any] | None:
        detail = await _detail(platform, space, row["id"])
        return detail if detail["state"] == "ended" else None

    final = await eventually(ended)
    assert final["end_reason"] == "completed"
    events = [entry["event"] for entry in final["timeline"]]
    for expected in ("connected", "active", "hold", "resume", "transfer_failed"):
        assert expected in events, events
    assert [e["state"] for e in final["timeline"]][-1] == "ended"
    await eventually(lambda: _room_gone(livekit_standin, "call-room-1"))
    stored = (await platform.client.get(path, headers=space.viewer)).json()
    assert stored["state"] == "ended"
    listed = (await platform.client.get(space.path("/calls"), params={"state": "ended"}, headers=space.viewer)).json()
    assert [r["id"] for r in listed["data"]] == [row["id"]]

    # Another space cannot see or touch the call.
    other = await platform.new_space()
    assert (await platform.client.get(other.path(f"/calls/{row['id']}"), headers=other.owner)).status_code == 404
    assert (
        await platform.client.post(other.path(f"/calls/{row['id']}/hangup"), headers=other.owner)
    ).status_code == 404
    ended_again = await platform.client.post(f"{path}/hangup", headers=space.admin)
    assert ended_again.status_code == 409


async def _room_gone(standin: LiveKitStandIn, room: str) -> bool:
    return standin.room(room) is None


async def test_webhooks_are_verified_and_processed_once(
    stack: tuple[Platform, str], livekit_standin: LiveKitStandIn
) -> None:
    platform, base_url = stack
    line = await _line(platform)
    livekit_standin.auto_webhooks = False
    caller = await livekit_standin.add_sip_caller(
        "call-room-2", "+14155550198", line.e164, trunk_id=line.inbound_trunk_id
    )
    for _ in range(2):
        status = await livekit_standin.send_webhook(
            "participant_joined", room="call-room-2", participant=caller, id="EV_dup"
        )
        assert status == 204
    row = await _the_call(platform, line.space)
    detail = await _detail(platform, line.space, row["id"])
    assert [e["event"] for e in detail["timeline"]].count("connected") == 1

    event = build_event("participant_left", participant=caller, id="EV_forged")
    body = MessageToJson(event)
    url = f"{base_url}/webhooks/livekit"
    headers = {"content-type": "application/webhook+json"}
    async with httpx.AsyncClient() as http:
        forged = await http.post(url, content=body, headers=headers | {"Authorization": sign(body, "devkey", "x" * 40)})
        assert forged.status_code == 401
        tampered = body.replace("+14155550198", "+14155550197")
        signed_other = sign(body, livekit_standin.api_key, livekit_standin.api_secret)
        assert (
            await http.post(url, content=tampered, headers=headers | {"Authorization": signed_other})
        ).status_code == 401
        assert (await http.post(url, content=body, headers=headers)).status_code == 401
        junk = "{not json"
        signed_junk = sign(junk, livekit_standin.api_key, livekit_standin.api_secret)
        assert (await http.post(url, content=junk, headers=headers | {"Authorization": signed_junk})).status_code == 400
    # None of those ended the call.
    assert (await _detail(platform, line.space, row["id"]))["state"] != "ended"


async def test_outbound_call_placed_through_the_api(
    stack: tuple[Platform, str], livekit_standin: LiveKitStandIn
) -> None:
    platform, _ = stack
    line = await _line(platform)
    space = line.space
    placed = await platform.client.post(
        space.path("/calls"), json={"from_number": line.e164, "to_number": "+14155550177"}, headers=space.admin
    )
    assert placed.status_code == 201, placed.text
    call = placed.json()
    assert call["direction"] == "outbound" and call["agent_id"] == line.agent_id

    async def connected() -> dict[str, Any] | None:
        detail = await _detail(platform, space, call["id"])
        return detail if detail["state"] == "connected" else None

    await eventually(connected)
    [dial] = livekit_standin.calls("CreateSIPParticipant")
    assert dial.sip_call_to == "+14155550177" and dial.sip_number == line.e164
    assert dict(dial.participant_attributes)["bivariant.workflowId"] == call["workflow_id"]
    # The callee's participant_joined webhook reached this call, and started no other.
    await livekit_standin.settle()
    rows = (await platform.client.get(space.path("/calls"), headers=space.viewer)).json()["data"]
    assert [r["id"] for r in rows] == [call["id"]]

    hung_up = await platform.client.post(space.path(f"/calls/{call['id']}/hangup"), headers=space.admin)
    if hung_up.status_code != 200:  # seen twice in CI as 409: say what ended the call (pytest cuts a long repr)
        ended = await _detail(platform, space, call["id"])
        events = [(e["event"], e.get("detail")) for e in ended.get("timeline", [])]
        pytest.fail(
            f"hang-up answered {hung_up.status_code} {hung_up.text}; end_reason {ended.get('end_reason')}; "
            f"timeline {events}; webhooks {livekit_standin.webhook_history()}"
        )
    assert hung_up.json()["state"] == "ended"
    assert hung_up.json()["end_reason"] == "completed"

    not_ours = await platform.client.post(
        space.path("/calls"), json={"from_number": unique_e164(), "to_number": "+14155550177"}, headers=space.admin
    )
    assert not_ours.status_code == 422 and not_ours.json()["errors"][0]["loc"] == ["body", "from_number"]
    viewer = await platform.client.post(
        space.path("/calls"), json={"from_number": line.e164, "to_number": "+14155550177"}, headers=space.viewer
    )
    assert viewer.status_code == 403


@pytest.mark.parametrize("ended_before_stop_answers", [False, True], ids=["stop-answers-first", "webhook-first"])
async def test_recording_follows_the_numbers_policy(
    stack: tuple[Platform, str], livekit_standin: LiveKitStandIn, ended_before_stop_answers: bool
) -> None:
    """The egress's file is the call's recording, whichever of StopEgress's answer and ``egress_ended`` comes
    first (the webhook first used to leave the recording ``stopping`` until a minute's wait ran out)."""
    if ended_before_stop_answers:
        livekit_standin.before_stop_egress_answers = lambda _: livekit_standin.deliver_webhooks()
    platform, _ = stack
    line = await _line(platform)
    space = line.space
    numbers = (await platform.client.get(space.path("/phone-numbers"), headers=space.admin)).json()["data"]
    patched = await platform.client.patch(
        space.path(f"/phone-numbers/{numbers[0]['id']}"), json={"recording_policy": "always"}, headers=space.admin
    )
    assert patched.status_code == 200
    caller = await livekit_standin.add_sip_caller(
        "call-room-rec", "+14155550188", line.e164, trunk_id=line.inbound_trunk_id
    )

    async def recording() -> Any:
        started = [r for r in livekit_standin.calls("StartRoomCompositeEgress") if r.room_name == "call-room-rec"]
        return started[0] if started else None

    request = await eventually(recording)
    row = await _the_call(platform, space)
    assert request.audio_only is True
    assert [o.filepath for o in request.file_outputs] == [f"spaces/{space.id}/recordings/{row['id']}.ogg"]

    async def recording_state() -> dict[str, Any] | None:
        detail = await _detail(platform, space, row["id"])
        return detail if detail["recording_status"] == "recording" else None

    await eventually(recording_state)
    await livekit_standin.hang_up("call-room-rec", caller.identity)
    handle = temporal_client(platform).get_workflow_handle(row["workflow_id"])
    result = await asyncio.wait_for(handle.result(), timeout=30)
    assert result["recording_status"] == "complete"
    [complete] = [e for e in result["timeline"] if e["event"] == "recording_complete"]
    assert complete["detail"] == f"spaces/{space.id}/recordings/{row['id']}.ogg"
    assert len(livekit_standin.calls("StopEgress")) == 1


async def test_a_finished_room_ends_its_call(stack: tuple[Platform, str], livekit_standin: LiveKitStandIn) -> None:
    """Across the boundary: the room the workflow's activity created, finished through LiveKit's signed
    ``room_finished`` webhook (and nothing else), ends its call as completed."""
    platform, _ = stack
    line = await _line(platform)
    space = line.space
    placed = await platform.client.post(
        space.path("/calls"), json={"from_number": line.e164, "to_number": "+14155550178"}, headers=space.admin
    )
    assert placed.status_code == 201, placed.text
    call = placed.json()

    async def connected() -> bool:
        return (await _detail(platform, space, call["id"]))["state"] == "connected"

    await eventually(connected)
    room = call["workflow_id"]
    [created] = [r for r in livekit_standin.calls("CreateRoom") if r.name == room]
    assert RoomMetadata.decode(created.metadata).workflow_id == call["workflow_id"]

    livekit_standin.auto_webhooks = False  # only room_finished reaches the API, not the participants leaving
    finished_room = livekit_standin.room(room)
    assert finished_room is not None
    await livekit_standin.close_room(room)
    assert await livekit_standin.send_webhook("room_finished", room=finished_room) == 204

    async def ended() -> dict[str, Any] | None:
        detail = await _detail(platform, space, call["id"])
        return detail if detail["state"] == "ended" else None

    final = await eventually(ended)
    assert final["end_reason"] == "completed"
    assert final["timeline"][-1]["event"] == "hangup" and final["timeline"][-1]["detail"] == "livekit"


async def test_an_agent_leaving_without_a_hangup_is_replaced_once(
    stack: tuple[Platform, str], livekit_standin: LiveKitStandIn
) -> None:
    """The LiveKit path of 'the agent comes back': the agent's participant leaves a call that goes on (its worker
    died) → one new dispatch into the same room, marked as resuming; a redelivered webhook dispatches nothing more."""
    platform, _ = stack
    line = await _line(platform)
    caller = await livekit_standin.add_sip_caller(
        "call-room-agent", "+14155550166", line.e164, trunk_id=line.inbound_trunk_id
    )

    def dispatches() -> list[Any]:
        return [d for d in livekit_standin.calls("CreateDispatch") if d.room == "call-room-agent"]

    async def first_dispatch() -> Any:
        return dispatches()[0] if dispatches() else None

    await eventually(first_dispatch)
    row = await _the_call(platform, line.space)
    agent = await livekit_standin.add_participant(
        "call-room-agent",
        "agent-AJ_1",
        kind=ParticipantInfo.Kind.AGENT,  # the dispatched agent joins and speaks
    )
    calls = CallClient(temporal_client(platform), platform.settings.task_queue)
    call = calls.call(row["workflow_id"], space_id=line.space.id)
    await call.active(c.ActiveEvent(agent_identity=agent.identity))

    async def active() -> bool:
        return (await _detail(platform, line.space, row["id"]))["state"] == "active"

    await eventually(active)
    livekit_standin.auto_webhooks = False
    left = await livekit_standin.hang_up("call-room-agent", agent.identity)  # the worker died: no hang-up
    livekit_standin.auto_webhooks = True
    for _ in range(2):  # delivered twice, with two event ids
        assert await livekit_standin.send_webhook("participant_left", room="call-room-agent", participant=left) == 204

    async def redispatched() -> Any:
        return dispatches()[1] if len(dispatches()) > 1 else None

    again = await eventually(redispatched)
    metadata = DispatchMetadata.decode(again.metadata)
    assert metadata.resumed and metadata.workflow_id == row["workflow_id"]
    await livekit_standin.settle()
    assert len(dispatches()) == 2
    detail = await _detail(platform, line.space, row["id"])
    assert detail["state"] == "active"
    events = [e["event"] for e in detail["timeline"]]
    assert events.count("agent_lost") == 1 and events.count("agent_redispatched") == 1

    await livekit_standin.hang_up("call-room-agent", caller.identity)

    async def ended() -> bool:
        return (await _detail(platform, line.space, row["id"]))["state"] == "ended"

    await eventually(ended)


async def test_egress_waits_for_the_callers_consent(
    stack: tuple[Platform, str], livekit_standin: LiveKitStandIn
) -> None:
    """A space that requires consent: no egress until the agent reports the caller's consent through the typed
    call client; a refusal on another call means no egress at all, and both calls go on to end normally."""
    platform, _ = stack
    line = await _line(platform)
    space = line.space
    assert (
        await platform.client.patch(space.path(), json={"recording_consent": "require"}, headers=space.owner)
    ).is_success
    numbers = (await platform.client.get(space.path("/phone-numbers"), headers=space.admin)).json()["data"]
    patched = await platform.client.patch(
        space.path(f"/phone-numbers/{numbers[0]['id']}"), json={"recording_policy": "always"}, headers=space.admin
    )
    assert patched.status_code == 200
    calls = CallClient(temporal_client(platform), platform.settings.task_queue)
    outcomes = {"call-room-yes": ConsentOutcome.GIVEN, "call-room-no": ConsentOutcome.REFUSED}
    for room, outcome in outcomes.items():
        caller = await livekit_standin.add_sip_caller(room, unique_e164(), line.e164, trunk_id=line.inbound_trunk_id)

        async def asked(room: str = room) -> dict[str, Any] | None:
            rows = (await platform.client.get(space.path("/calls"), headers=space.viewer)).json()["data"]
            for row in rows:
                detail = await _detail(platform, space, row["id"])
                if detail["room_name"] == room and detail["state"] != "ringing":
                    return detail
            return None

        detail = await eventually(asked)
        assert detail["recording_consent"] == {"mode": "require", "outcome": "pending", "by": None}
        assert detail["recording_status"] == "requested"
        assert not [r for r in livekit_standin.calls("StartRoomCompositeEgress") if r.room_name == room]
        call = calls.call(detail["workflow_id"], space_id=space.id)
        answered = await call.report_recording_consent(ConsentReport(outcome, "dtmf"))
        assert answered.record is (outcome is ConsentOutcome.GIVEN)
        again = await call.report_recording_consent(ConsentReport(ConsentOutcome.REFUSED, "speech"))
        assert again.outcome is outcome  # the first answer counts
        with pytest.raises(CallActionRefused):
            await call.report_recording_consent(ConsentReport(ConsentOutcome.ANNOUNCED, "announcement"))
        after = await _detail(platform, space, detail["id"])
        assert after["recording_consent"]["outcome"] == outcome.value
        await livekit_standin.hang_up(room, caller.identity)
        result = await temporal_client(platform).get_workflow_handle(detail["workflow_id"]).result()
        assert result["state"] == "ended" and result["end_reason"] == "completed"
        started = [r for r in livekit_standin.calls("StartRoomCompositeEgress") if r.room_name == room]
        events = [e["event"] for e in result["timeline"]]
        if outcome is ConsentOutcome.GIVEN:
            assert len(started) == 1 and result["recording_status"] == "complete"
            assert events.index("recording_consent") < events.index("recording_started")
        else:
            assert started == [] and result["recording_status"] == "declined"
            assert "recording_started" not in events


async def test_a_failed_egress_is_a_failed_recording_and_the_call_goes_on(
    stack: tuple[Platform, str], livekit_standin: LiveKitStandIn
) -> None:
    """LiveKit reports the egress failed mid-call (``egress_ended``, EGRESS_FAILED): the call's recording is failed,
    its asset is registered as failed with LiveKit's reason, and the call carries on and ends normally."""
    platform, _ = stack
    line = await _line(platform)
    space = line.space
    numbers = (await platform.client.get(space.path("/phone-numbers"), headers=space.admin)).json()["data"]
    patched = await platform.client.patch(
        space.path(f"/phone-numbers/{numbers[0]['id']}"), json={"recording_policy": "always"}, headers=space.admin
    )
    assert patched.status_code == 200
    caller = await livekit_standin.add_sip_caller(
        "call-room-egress-fail", "+14155550189", line.e164, trunk_id=line.inbound_trunk_id
    )
    row = await _the_call(platform, space)

    async def recording() -> dict[str, Any] | None:
        detail = await _detail(platform, space, row["id"])
        return detail if detail["recording_status"] == "recording" else None

    await eventually(recording)
    [egress] = [r for r in livekit_standin.state.egresses.values() if r.room_name == "call-room-egress-fail"]
    await livekit_standin.fail_egress(egress.egress_id, "upload failed: access denied")

    async def failed() -> dict[str, Any] | None:
        detail = await _detail(platform, space, row["id"])
        return detail if detail["recording_status"] == "failed" else None

    detail = await eventually(failed)
    assert detail["state"] in ("connected", "active")  # the call is unaffected
    calls = CallClient(temporal_client(platform), platform.settings.task_queue)
    await calls.call(row["workflow_id"], space_id=space.id).active(c.ActiveEvent(agent_identity="agent-egress"))
    held = await platform.client.post(space.path(f"/calls/{row['id']}/hold"), headers=space.as_role(Role.OPERATOR))
    assert held.status_code == 200, held.text  # and still takes actions
    await livekit_standin.hang_up("call-room-egress-fail", caller.identity)
    result = await temporal_client(platform).get_workflow_handle(row["workflow_id"]).result()
    assert result["state"] == "ended" and result["end_reason"] == "completed"
    assert result["recording_status"] == "failed"
    events = [(e["event"], e["detail"]) for e in result["timeline"]]
    assert ("recording_failed", "upload failed: access denied") in events
    assert any(event == "recording_registered" for event, _ in events), events
    assert livekit_standin.calls("StopEgress") == []  # nothing left to stop
    assets = (await platform.client.get(space.path("/recordings"), headers=space.viewer)).json()["data"]
    [asset] = [a for a in assets if a["call_id"] == row["id"]]
    assert asset["status"] == "failed" and "access denied" in (asset["error"] or "")


async def test_hold_mutes_the_recorded_caller_unless_the_space_records_hold(
    stack: tuple[Platform, str], livekit_standin: LiveKitStandIn
) -> None:
    """LiveKit egress cannot pause: where the recording pauses over a hold, the held caller stops publishing into the
    room (its audio, and the file, are silent), marked on the timeline like a pause; a call ended while on hold still
    has its egress stopped and registered. A space that records hold leaves the caller's audio in."""
    platform, _ = stack
    operator = Role.OPERATOR
    for record_hold in (False, True):
        line = await _line(platform)
        space = line.space
        assert (
            await platform.client.patch(space.path(), json={"record_hold": record_hold}, headers=space.owner)
        ).is_success
        numbers = (await platform.client.get(space.path("/phone-numbers"), headers=space.admin)).json()["data"]
        policy = {"recording_policy": "always"}
        number_path = space.path(f"/phone-numbers/{numbers[0]['id']}")
        assert (await platform.client.patch(number_path, json=policy, headers=space.admin)).is_success
        room = f"call-room-hold-{record_hold}"
        caller = await livekit_standin.add_sip_caller(room, unique_e164(), line.e164, trunk_id=line.inbound_trunk_id)
        row = await _the_call(platform, space)
        path = space.path(f"/calls/{row['id']}")
        await (
            temporal_client(platform)
            .get_workflow_handle(row["workflow_id"])
            .signal(CallWorkflow.active, c.ActiveEvent())
        )

        async def recording(path: str = path, viewer: dict[str, str] = space.viewer) -> dict[str, Any] | None:
            detail = (await platform.client.get(path, headers=viewer)).json()
            return detail if detail["state"] == "active" and detail["recording_status"] == "recording" else None

        await eventually(recording)
        seen = len(livekit_standin.calls("UpdateParticipant"))
        held = await platform.client.post(f"{path}/hold", headers=space.as_role(operator))
        assert held.status_code == 200, held.text
        assert held.json()["recording_status"] == ("recording" if record_hold else "paused")
        [update] = livekit_standin.calls("UpdateParticipant")[seen:]
        assert update.identity == caller.identity and not update.permission.can_subscribe
        assert update.permission.can_publish is record_hold  # muted in the room: the file is silent over the hold
        resumed = await platform.client.post(f"{path}/resume", headers=space.as_role(operator))
        assert resumed.status_code == 200 and resumed.json()["recording_status"] == "recording"
        assert livekit_standin.calls("UpdateParticipant")[-1].permission.can_publish
        assert (await platform.client.post(f"{path}/hold", headers=space.as_role(operator))).status_code == 200
        stops = len(livekit_standin.calls("StopEgress"))
        await livekit_standin.hang_up(room, caller.identity)  # ends while on hold
        result = await temporal_client(platform).get_workflow_handle(row["workflow_id"]).result()
        assert result["end_reason"] == "completed" and result["recording_status"] == "complete"
        assert len(livekit_standin.calls("StopEgress")) == stops + 1
        notes = [(e["event"], e["detail"]) for e in result["timeline"]]
        paused = [n for n in notes if n == ("recording_paused", "hold")]
        assert len(paused) == (0 if record_hold else 2), notes
        assert (("recording_resumed", "hold") in notes) is not record_hold


async def test_an_operators_hang_up_stays_the_operators_when_livekit_reports_the_caller_leaving_first(
    stack: tuple[Platform, str], livekit_standin: LiveKitStandIn
) -> None:
    """Deleting the room disconnects the caller, and LiveKit's ``participant_left`` may reach us before DeleteRoom
    answers. Seen in CI: that report, arriving while the workflow task that ended the call still ran, failed the
    task, and its retry ended the call as the caller's: the operator's hang-up was answered 409."""
    livekit_standin.before_delete_room_answers = lambda _: livekit_standin.deliver_webhooks()
    platform, _ = stack
    line = await _line(platform)
    space = line.space
    await livekit_standin.add_sip_caller("call-room-bye", "+14155550166", line.e164, trunk_id=line.inbound_trunk_id)
    row = await _the_call(platform, space)

    async def connected() -> bool:
        return (await _detail(platform, space, row["id"]))["state"] == "connected"

    await eventually(connected)
    hung_up = await platform.client.post(space.path(f"/calls/{row['id']}/hangup"), headers=space.admin)
    assert hung_up.status_code == 200, hung_up.text
    assert hung_up.json()["state"] == "ended" and hung_up.json()["end_reason"] == "completed"

    handle = temporal_client(platform).get_workflow_handle(row["workflow_id"])
    result = await asyncio.wait_for(handle.result(), timeout=30)
    left = [w for w in livekit_standin.webhooks if w.event.event == "participant_left"]
    assert left and all(w.status == 204 for w in left), livekit_standin.webhook_history()  # the report did arrive
    hang_ups = [e["detail"] for e in result["timeline"] if e["event"] == "hangup"]
    assert hang_ups == [hung_up.json()["timeline"][-1]["detail"]], result["timeline"]  # one end: the operator's
    assert hang_ups[0] != "caller"
