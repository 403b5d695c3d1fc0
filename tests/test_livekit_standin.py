"""Self-tests of the LiveKit stand-in, driven by the official ``livekit-api`` client."""

from __future__ import annotations

import base64
import contextlib
import datetime
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiohttp import web
from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory
from livekit import api
from livekit.protocol.models import DisconnectReason, ParticipantInfo, RoomEndReason

from tests.livekit_standin import LiveKitStandIn, fixtures, sip_error_meta

livekit_standin = fixtures.livekit_standin  # the fixture the package ships

OUT_NUMBER = "+15550100000"
IN_NUMBER = "+15550200000"
CALLEE = "+15550300000"


@pytest_asyncio.fixture
async def client(livekit_standin: LiveKitStandIn) -> AsyncIterator[api.LiveKitAPI]:
    async with api.LiveKitAPI(livekit_standin.url, livekit_standin.api_key, livekit_standin.api_secret) as c:
        yield c


async def _outbound_trunk(client: api.LiveKitAPI) -> str:
    info = api.SIPOutboundTrunkInfo(name="out", address="sip.carrier.example", numbers=[OUT_NUMBER])
    trunk = await client.sip.create_outbound_trunk(api.CreateSIPOutboundTrunkRequest(trunk=info))
    return trunk.sip_trunk_id


def _dial(trunk_id: str, number: str, room: str = "call-1", wait: bool = True) -> api.CreateSIPParticipantRequest:
    return api.CreateSIPParticipantRequest(
        sip_trunk_id=trunk_id,
        sip_call_to=number,
        room_name=room,
        participant_identity="callee",
        participant_attributes={"app.callId": "c-1"},
        wait_until_answered=wait,
    )


def _token(lk: LiveKitStandIn, video: api.VideoGrants | None = None, sip: api.SIPGrants | None = None) -> str:
    tok = api.AccessToken(lk.api_key, lk.api_secret)
    if video is not None:
        tok.with_grants(video)
    if sip is not None:
        tok.with_sip_grants(sip)
    return tok.to_jwt()


async def _post(lk: LiveKitStandIn, path: str, body: bytes, **headers: str) -> httpx.Response:
    headers.setdefault("Content-Type", "application/protobuf")
    async with httpx.AsyncClient() as http:
        return await http.post(f"{lk.url}/twirp/{path}", content=body, headers=headers)


def _rpc_status_class() -> Any:
    """``google.rpc.Status``, built here independently of the stand-in to decode ``error_details``."""
    pool = descriptor_pool.DescriptorPool()
    any_file = descriptor_pb2.FileDescriptorProto()
    any_pb2.DESCRIPTOR.CopyToProto(any_file)
    pool.Add(any_file)
    fdp = descriptor_pb2.FileDescriptorProto(
        name="rpc_status_test.proto", package="google.rpc", syntax="proto3", dependency=[any_file.name]
    )
    msg = fdp.message_type.add(name="Status")
    f = descriptor_pb2.FieldDescriptorProto
    msg.field.add(name="code", number=1, type=f.TYPE_INT32, label=f.LABEL_OPTIONAL)
    msg.field.add(name="message", number=2, type=f.TYPE_STRING, label=f.LABEL_OPTIONAL)
    msg.field.add(
        name="details",
        number=3,
        type=f.TYPE_MESSAGE,
        label=f.LABEL_REPEATED,
        type_name=".google.protobuf.Any",
    )
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("google.rpc.Status"))


# ------------------------------------------------------------------ plumbing
async def test_fixture_serves_twirp_on_loopback(livekit_standin: LiveKitStandIn) -> None:
    assert livekit_standin.url.startswith("http://127.0.0.1:")
    resp = await _post(livekit_standin, "livekit.RoomService/Nope", b"", Authorization="")
    assert resp.status_code == 404
    assert resp.json()["code"] == "bad_route"
    assert resp.json()["meta"] == {"twirp_invalid_route": "POST /twirp/livekit.RoomService/Nope"}


async def test_twirp_routing_errors(livekit_standin: LiveKitStandIn) -> None:
    lk = livekit_standin
    admin = _token(lk, api.VideoGrants(room_admin=True, room="r"))
    bearer = f"Bearer {admin}"
    wrong_type = await _post(lk, "livekit.RoomService/ListParticipants", b"", **{"Content-Type": "text/plain"})
    assert (wrong_type.status_code, wrong_type.json()["code"]) == (404, "bad_route")
    malformed = await _post(lk, "livekit.RoomService/ListParticipants", b"\xff\xff", Authorization=bearer)
    assert (malformed.status_code, malformed.json()["code"]) == (400, "malformed")
    async with httpx.AsyncClient() as http:
        get = await http.get(f"{lk.url}/twirp/livekit.RoomService/ListRooms")
    assert (get.status_code, get.json()["code"]) == (404, "bad_route")
    move = api.MoveParticipantRequest(room="r", identity="a", destination_room="r2").SerializeToString()
    unimplemented = await _post(lk, "livekit.RoomService/MoveParticipant", move, Authorization=bearer)
    assert (unimplemented.status_code, unimplemented.json()["code"]) == (501, "unimplemented")
    body = api.ListParticipantsRequest(room="r").SerializeToString()
    ok = await _post(lk, "livekit.RoomService/ListParticipants", body, Authorization=bearer)
    assert ok.status_code == 200
    assert ok.headers["Content-Type"] == "application/protobuf"
    assert api.ListParticipantsResponse.FromString(ok.content).participants == []


# ---------------------------------------------------------------------- auth
async def test_wrong_secret_is_rejected_by_the_auth_middleware(livekit_standin: LiveKitStandIn) -> None:
    async with api.LiveKitAPI(livekit_standin.url, livekit_standin.api_key, "w" * 40) as bad:
        with pytest.raises(api.ServerError) as err:
            await bad.room.list_rooms(api.ListRoomsRequest())
    # livekit-server answers 401 with a text body, so the client cannot read a Twirp code.
    assert (err.value.status, err.value.code) == (401, "unknown")
    assert livekit_standin.requests[-1].auth_error is not None
    assert "signature" in livekit_standin.requests[-1].auth_error.lower()


async def test_token_problems_are_plain_text_401s(livekit_standin: LiveKitStandIn) -> None:
    lk = livekit_standin
    expired = (
        api.AccessToken(lk.api_key, lk.api_secret)
        .with_grants(api.VideoGrants(room_list=True))
        .with_ttl(datetime.timedelta(minutes=-10))
        .to_jwt()
    )
    other_key = api.AccessToken("otherkey", lk.api_secret).with_grants(api.VideoGrants(room_list=True)).to_jwt()
    cases = {
        f"Bearer {expired}": "expired",
        f"Bearer {other_key}": "invalid API key: otherkey",
        "Bearer not-a-jwt": "invalid authorization token",
        _token(lk, api.VideoGrants(room_list=True)): "Must start with Bearer",
    }
    for header, expected in cases.items():
        resp = await _post(lk, "livekit.RoomService/ListRooms", b"", Authorization=header)
        assert resp.status_code == 401
        assert expected in resp.text
        assert not resp.headers["Content-Type"].startswith("application/json")


async def test_missing_grant_is_unauthenticated_like_livekit(livekit_standin: LiveKitStandIn) -> None:
    lk = livekit_standin
    token = _token(lk, api.VideoGrants(room_list=True))  # CreateRoom needs roomCreate
    body = api.CreateRoomRequest(name="r").SerializeToString()
    resp = await _post(lk, "livekit.RoomService/CreateRoom", body, Authorization=f"Bearer {token}")
    assert resp.status_code == 401
    assert resp.json() == {"code": "unauthenticated", "msg": "permissions denied"}
    assert lk.room("r") is None
    no_token = await _post(lk, "livekit.RoomService/ListRooms", b"")
    assert (no_token.status_code, no_token.json()["code"]) == (401, "unauthenticated")
    other_room = _token(lk, api.VideoGrants(room_admin=True, room="a"))
    body = api.ListParticipantsRequest(room="b").SerializeToString()
    resp = await _post(lk, "livekit.RoomService/ListParticipants", body, Authorization=f"Bearer {other_room}")
    assert resp.status_code == 401


async def test_missing_grant_can_answer_403() -> None:
    async with LiveKitStandIn(missing_grant_code="permission_denied") as lk:
        token = _token(lk, api.VideoGrants(room_create=True), api.SIPGrants(call=True))
        body = api.TransferSIPParticipantRequest(
            room_name="r", participant_identity="p", transfer_to="tel:+1555"
        ).SerializeToString()
        resp = await _post(lk, "livekit.SIP/TransferSIPParticipant", body, Authorization=f"Bearer {token}")
        assert resp.status_code == 403
        assert resp.json() == {"code": "permission_denied", "msg": "permissions denied"}
        sip_only = _token(lk, sip=api.SIPGrants(call=True))
        resp = await _post(lk, "livekit.SIP/ListSIPInboundTrunk", b"", Authorization=f"Bearer {sip_only}")
        assert resp.status_code == 403  # trunk CRUD needs sip.admin, not sip.call
        assert lk.requests[-1].sip_grants is not None and lk.requests[-1].sip_grants.call


async def test_requests_are_recorded_with_their_grants(livekit_standin: LiveKitStandIn, client: api.LiveKitAPI) -> None:
    await client.agent_dispatch.create_dispatch(
        api.CreateAgentDispatchRequest(agent_name="receptionist", room="r1", metadata='{"lang":"fr"}')
    )
    (sent,) = livekit_standin.calls("CreateDispatch")
    assert (sent.agent_name, sent.room, sent.metadata) == ("receptionist", "r1", '{"lang":"fr"}')
    record = livekit_standin.requests[-1]
    assert (record.service, record.method) == ("livekit.AgentDispatchService", "CreateDispatch")
    assert record.grants is not None and record.grants.room_admin and record.grants.room == "r1"
    assert record.response.id.startswith("AD_")
    assert record.request_id  # the client's idempotency key
    with pytest.raises(ValueError):
        livekit_standin.calls("CreateDispach")


# ---------------------------------------------------------------- rooms
async def test_room_service(livekit_standin: LiveKitStandIn, client: api.LiveKitAPI) -> None:
    lk = livekit_standin
    room = await client.room.create_room(api.CreateRoomRequest(name="r1", metadata="m1", empty_timeout=60))
    assert room.sid.startswith("RM_") and (room.metadata, room.empty_timeout) == ("m1", 60)
    again = await client.room.create_room(api.CreateRoomRequest(name="r1", metadata="ignored"))
    assert (again.sid, again.metadata) == (room.sid, "m1")
    await client.room.create_room(api.CreateRoomRequest(name="r2"))
    listed = await client.room.list_rooms(api.ListRoomsRequest(names=["r2"]))
    assert [r.name for r in listed.rooms] == ["r2"]
    updated = await client.room.update_room_metadata(api.UpdateRoomMetadataRequest(room="r1", metadata="m2"))
    assert updated.metadata == "m2"

    caller = await lk.add_sip_caller("r1", "+15557654321", IN_NUMBER, trunk_id="ST_x")
    ident = api.RoomParticipantIdentity(room="r1", identity=caller.identity)
    got = await client.room.get_participant(ident)
    assert got.sid == caller.sid and got.kind == ParticipantInfo.Kind.SIP
    changed = await client.room.update_participant(
        api.UpdateParticipantRequest(
            room="r1",
            identity=caller.identity,
            metadata="md",
            name="Caller",
            attributes={"a": "1", "sip.callID": ""},
        )
    )
    assert (changed.metadata, changed.name, changed.attributes["a"]) == ("md", "Caller", "1")
    assert "sip.callID" not in changed.attributes  # an empty value deletes

    track = caller.tracks[0].sid
    muted = await client.room.mute_published_track(
        api.MuteRoomTrackRequest(room="r1", identity=caller.identity, track_sid=track, muted=True)
    )
    assert muted.track.muted
    with pytest.raises(api.ServerError) as err:  # remote unmute is off by default in livekit-server
        await client.room.mute_published_track(
            api.MuteRoomTrackRequest(room="r1", identity=caller.identity, track_sid=track, muted=False)
        )
    assert (err.value.code, err.value.status) == ("failed_precondition", 412)

    await client.room.send_data(api.SendDataRequest(room="r1", data=b"hi", topic="t"))
    assert lk.calls("SendData")[0].data == b"hi" and len(lk.calls("SendData")[0].nonce) == 16
    listed_p = await client.room.list_participants(api.ListParticipantsRequest(room="r1"))
    assert [p.identity for p in listed_p.participants] == [caller.identity]
    await client.room.remove_participant(ident)
    assert lk.participants("r1") == []
    with pytest.raises(api.ServerError) as err:
        await client.room.get_participant(ident)
    assert (err.value.code, err.value.status) == ("not_found", 404)

    await client.room.delete_room(api.DeleteRoomRequest(room="r1"))
    assert lk.room("r1") is None
    with pytest.raises(api.ServerError) as err:
        await client.room.delete_room(api.DeleteRoomRequest(room="r1"))
    assert err.value.code == "not_found"
    assert [e.event for e in lk.events].count("room_finished") == 1


# ------------------------------------------------------------ SIP config
async def test_sip_trunk_crud(livekit_standin: LiveKitStandIn, client: api.LiveKitAPI) -> None:
    inbound = await client.sip.create_inbound_trunk(
        api.CreateSIPInboundTrunkRequest(trunk=api.SIPInboundTrunkInfo(name="in", numbers=[IN_NUMBER]))
    )
    assert inbound.sip_trunk_id.startswith("ST_") and inbound.HasField("created_at")
    replaced = await client.sip.update_inbound_trunk(
        inbound.sip_trunk_id, api.SIPInboundTrunkInfo(name="in2", numbers=[IN_NUMBER, "+15550200001"])
    )
    assert (replaced.sip_trunk_id, replaced.name, len(replaced.numbers)) == (inbound.sip_trunk_id, "in2", 2)
    fields = await client.sip.update_inbound_trunk_fields(
        inbound.sip_trunk_id,
        numbers=api.ListUpdate(add=["+15550200002"], remove=[IN_NUMBER]),
        metadata="meta",
    )
    assert (list(fields.numbers), fields.name, fields.metadata) == (
        ["+15550200001", "+15550200002"],
        "in2",
        "meta",
    )
    outbound_id = await _outbound_trunk(client)
    out = await client.sip.update_outbound_trunk_fields(outbound_id, numbers=["+15550100009"], name="renamed")
    assert (list(out.numbers), out.name, out.address) == (["+15550100009"], "renamed", "sip.carrier.example")
    out = await client.sip.update_outbound_trunk(
        outbound_id, api.SIPOutboundTrunkInfo(address="sip2.example", numbers=[OUT_NUMBER])
    )
    assert (out.address, out.name) == ("sip2.example", "")

    found = await client.sip.list_inbound_trunk(api.ListSIPInboundTrunkRequest(numbers=["+15550200002"]))
    assert [t.sip_trunk_id for t in found.items] == [inbound.sip_trunk_id]
    none = await client.sip.list_inbound_trunk(api.ListSIPInboundTrunkRequest(numbers=["+19999"]))
    assert list(none.items) == []
    outs = await client.sip.list_outbound_trunk(api.ListSIPOutboundTrunkRequest())
    assert [t.sip_trunk_id for t in outs.items] == [outbound_id]

    with pytest.raises(api.ServerError) as err:  # an outbound trunk needs numbers
        await client.sip.create_outbound_trunk(
            api.CreateSIPOutboundTrunkRequest(trunk=api.SIPOutboundTrunkInfo(address="sip.example"))
        )
    assert (err.value.code, err.value.status, err.value.message) == (
        "invalid_argument",
        400,
        "no trunk numbers specified",
    )
    with pytest.raises(api.ServerError) as err:
        await client.sip.update_outbound_trunk_fields("ST_missing", name="x")
    assert err.value.code == "not_found"

    deleted = await client.sip.delete_trunk(api.DeleteSIPTrunkRequest(sip_trunk_id=inbound.sip_trunk_id))
    assert deleted.sip_trunk_id == inbound.sip_trunk_id
    assert list((await client.sip.list_inbound_trunk(api.ListSIPInboundTrunkRequest())).items) == []
    assert livekit_standin.requests[-1].sip_grants is not None and livekit_standin.requests[-1].sip_grants.admin


async def test_sip_dispatch_rule_crud(client: api.LiveKitAPI) -> None:
    rule = api.SIPDispatchRule(dispatch_rule_individual=api.SIPDispatchRuleIndividual(room_prefix="call-"))
    created = await client.sip.create_dispatch_rule(
        api.CreateSIPDispatchRuleRequest(rule=rule, trunk_ids=["ST_a"], name="inbound")
    )
    assert created.sip_dispatch_rule_id.startswith("SDR_") and list(created.trunk_ids) == ["ST_a"]
    with pytest.raises(api.ServerError) as err:
        await client.sip.create_dispatch_rule(api.CreateSIPDispatchRuleRequest(rule=rule, trunk_ids=["ST_a"]))
    assert "Conflicting SIP Dispatch Rules" in err.value.message
    assert created.sip_dispatch_rule_id in err.value.message

    fields = await client.sip.update_dispatch_rule_fields(
        created.sip_dispatch_rule_id,
        trunk_ids=api.ListUpdate(add=["ST_b"]),
        metadata="m",
        attributes={"k": "v"},
    )
    assert (list(fields.trunk_ids), fields.metadata, dict(fields.attributes)) == (
        ["ST_a", "ST_b"],
        "m",
        {"k": "v"},
    )
    direct = api.SIPDispatchRule(dispatch_rule_direct=api.SIPDispatchRuleDirect(room_name="lobby"))
    replaced = await client.sip.update_dispatch_rule(
        created.sip_dispatch_rule_id, api.SIPDispatchRuleInfo(rule=direct, name="direct")
    )
    assert replaced.rule.dispatch_rule_direct.room_name == "lobby" and list(replaced.trunk_ids) == []
    listed = await client.sip.list_dispatch_rule(api.ListSIPDispatchRuleRequest())
    assert [r.name for r in listed.items] == ["direct"]
    gone = await client.sip.delete_dispatch_rule(
        api.DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=created.sip_dispatch_rule_id)
    )
    assert gone.name == "direct"
    with pytest.raises(api.ServerError) as err:
        await client.sip.delete_dispatch_rule(
            api.DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=created.sip_dispatch_rule_id)
        )
    assert (err.value.code, err.value.status) == ("not_found", 404)


# ------------------------------------------------------------- SIP calls
async def test_outbound_call_answered(livekit_standin: LiveKitStandIn, client: api.LiveKitAPI) -> None:
    trunk_id = await _outbound_trunk(client)
    info = await client.sip.create_sip_participant(_dial(trunk_id, CALLEE))
    assert info.sip_call_id.startswith("SCL_") and info.participant_id.startswith("PA_")
    assert (info.participant_identity, info.room_name) == ("callee", "call-1")
    p = livekit_standin.participant("call-1", "callee")
    assert p is not None and p.kind == ParticipantInfo.Kind.SIP and p.sid == info.participant_id
    assert {k: v for k, v in p.attributes.items() if k != "sip.hostname"} == {
        "app.callId": "c-1",
        "sip.callID": info.sip_call_id,
        "sip.trunkID": trunk_id,
        "sip.phoneNumber": CALLEE,
        "sip.trunkPhoneNumber": OUT_NUMBER,
        "sip.callStatus": "active",
    }
    sent = livekit_standin.calls("CreateSIPParticipant")[0]
    assert sent.wait_until_answered and sent.ringing_timeout.seconds == 30  # pinned by the client
    assert livekit_standin.requests[-1].sip_grants is not None and livekit_standin.requests[-1].sip_grants.call
    events = [(e.event, e.participant.attributes.get("sip.callStatus")) for e in livekit_standin.events]
    assert events == [("room_started", None), ("participant_joined", "dialing")]


async def test_outbound_busy_surfaces_sip_486(livekit_standin: LiveKitStandIn, client: api.LiveKitAPI) -> None:
    trunk_id = await _outbound_trunk(client)
    livekit_standin.dial_outcomes[CALLEE] = "busy"
    with pytest.raises(api.SipCallError) as err:
        await client.sip.create_sip_participant(_dial(trunk_id, CALLEE))
    e = err.value
    assert (e.code, e.status, e.sip_status_code, e.sip_status) == ("unavailable", 503, 486, "Busy Here")
    assert e.message == "INVITE failed: sip status: 486: Busy Here"
    assert str(e) == "SIP call failed: 486 Busy Here (unavailable)"
    status = _rpc_status_class().FromString(base64.b64decode(e.metadata["error_details"]))
    assert (status.code, status.message) == (14, e.message)  # gRPC UNAVAILABLE
    detail = api.SIPStatus()
    assert status.details[0].Unpack(detail) and detail.code == 486
    assert livekit_standin.participants("call-1") == []
    left = [e for e in livekit_standin.events if e.event == "participant_left"]
    assert left[0].participant.disconnect_reason == DisconnectReason.USER_REJECTED


async def test_outbound_no_answer_and_other_outcomes(livekit_standin: LiveKitStandIn, client: api.LiveKitAPI) -> None:
    lk = livekit_standin
    trunk_id = await _outbound_trunk(client)
    lk.dial_outcomes.update({"+15550000001": "no_answer", "+15550000002": 603, "+15550000003": "busy"})
    with pytest.raises(api.ServerError) as err:
        await client.sip.create_sip_participant(_dial(trunk_id, "+15550000001"))
    # livekit/sip cancels the INVITE when the ring window ends: Twirp "canceled", no SIP status
    assert not isinstance(err.value, api.SipCallError)
    assert (err.value.code, err.value.status) == ("canceled", 408)
    with pytest.raises(api.SipCallError) as sip_err:
        await client.sip.create_sip_participant(_dial(trunk_id, "+15550000002"))
    assert (sip_err.value.sip_status_code, sip_err.value.sip_status, sip_err.value.code) == (
        603,
        "Decline",
        "unavailable",
    )
    # Without wait_until_answered the API answers at once and the call fails afterwards.
    info = await client.sip.create_sip_participant(_dial(trunk_id, "+15550000003", wait=False))
    assert info.participant_identity == "callee"
    await lk.settle()
    assert lk.participants("call-1") == []
    with pytest.raises(api.ServerError) as err:
        await client.sip.create_sip_participant(_dial("ST_unknown", CALLEE))
    assert (err.value.code, err.value.status) == ("not_found", 404)


async def test_transfer(livekit_standin: LiveKitStandIn, client: api.LiveKitAPI) -> None:
    lk = livekit_standin
    await lk.add_sip_caller("call-1", "+15557654321", IN_NUMBER, identity="caller")
    lk.transfer_outcomes["tel:+15550009999"] = "busy"
    busy = api.TransferSIPParticipantRequest(
        room_name="call-1", participant_identity="caller", transfer_to="tel:+15550009999"
    )
    with pytest.raises(api.SipCallError) as err:
        await client.sip.transfer_sip_participant(busy)
    e = err.value
    assert (e.sip_status_code, e.sip_status, e.sip_transfer_reason) == (486, "Busy Here", "STR_REJECTED")
    assert e.sip_transfer_id is not None and e.sip_transfer_id.startswith("STR_")
    assert lk.participant("call-1", "caller") is not None  # a failed transfer keeps the call

    grants = lk.requests[-1].grants
    assert grants is not None and grants.room_admin and grants.room == "call-1"
    assert lk.requests[-1].sip_grants is not None and lk.requests[-1].sip_grants.call

    ok = await client.sip.transfer_sip_participant(
        api.TransferSIPParticipantRequest(room_name="call-1", participant_identity="caller", transfer_to="tel:+1555")
    )
    assert ok.status == api.STS_TRANSFER_SUCCESSFUL and ok.reason == api.STR_COMPLETED
    assert ok.transfer_id.startswith("STR_") and ok.sip_status.code == 200
    assert lk.participant("call-1", "caller") is None  # the call left the room
    with pytest.raises(api.ServerError) as gone:
        await client.sip.transfer_sip_participant(busy)
    assert (gone.value.code, gone.value.status) == ("not_found", 404)


async def test_failure_injection(livekit_standin: LiveKitStandIn, client: api.LiveKitAPI) -> None:
    lk = livekit_standin
    await lk.add_sip_caller("call-1", "+15557654321", IN_NUMBER, identity="caller")
    lk.fail(
        "TransferSIPParticipant",
        code="unavailable",
        msg="sip status: 486: Busy Here",
        meta=sip_error_meta(486),
    )
    req = api.TransferSIPParticipantRequest(room_name="call-1", participant_identity="caller", transfer_to="tel:+1")
    with pytest.raises(api.SipCallError) as err:
        await client.sip.transfer_sip_participant(req)
    assert (err.value.status, err.value.sip_status_code, err.value.sip_status) == (503, 486, "Busy Here")
    assert lk.participant("call-1", "caller") is not None

    lk.fail("livekit.AgentDispatchService/CreateDispatch", code="deadline_exceeded", msg="slow", times=2)
    dispatch = api.CreateAgentDispatchRequest(agent_name="a", room="call-1")
    for _ in range(2):
        with pytest.raises(api.ServerError) as plain:
            await client.agent_dispatch.create_dispatch(dispatch)
        assert (plain.value.code, plain.value.status, plain.value.message) == (
            "deadline_exceeded",
            408,
            "slow",
        )
    assert (await client.agent_dispatch.create_dispatch(dispatch)).agent_name == "a"
    assert len(lk.calls("CreateDispatch")) == 3
    assert (await client.sip.transfer_sip_participant(req)).status == api.STS_TRANSFER_SUCCESSFUL


# ------------------------------------------------------ dispatch and egress
async def test_agent_dispatch(livekit_standin: LiveKitStandIn, client: api.LiveKitAPI) -> None:
    d = await client.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(agent_name="bot", room="r"))
    assert livekit_standin.room("r") is not None  # the room is created for the dispatch
    assert [x.id for x in await client.agent_dispatch.list_dispatch("r")] == [d.id]
    got = await client.agent_dispatch.get_dispatch(d.id, "r")
    assert got is not None and got.agent_name == "bot"
    deleted = await client.agent_dispatch.delete_dispatch(d.id, "r")
    assert deleted.id == d.id and deleted.state.deleted_at > 0
    assert await client.agent_dispatch.list_dispatch("r") == []
    assert await client.agent_dispatch.get_dispatch(d.id, "r") is None


async def test_egress(livekit_standin: LiveKitStandIn, client: api.LiveKitAPI) -> None:
    await client.room.create_room(api.CreateRoomRequest(name="r"))
    file = api.EncodedFileOutput(filepath="rec/{room_name}.ogg")
    rc = await client.egress.start_room_composite_egress(
        api.RoomCompositeEgressRequest(room_name="r", audio_only=True, file_outputs=[file])
    )
    assert rc.egress_id.startswith("EG_") and rc.status == api.EGRESS_STARTING
    assert rc.room_composite.audio_only and rc.room_id == livekit_standin.room("r").sid  # type: ignore[union-attr]
    pe = await client.egress.start_participant_egress(api.ParticipantEgressRequest(room_name="r", identity="a"))
    te = await client.egress.start_track_egress(api.TrackEgressRequest(room_name="r", track_id="TR_x"))
    assert livekit_standin.requests[-1].grants.room_record  # type: ignore[union-attr]
    active = await client.egress.list_egress(api.ListEgressRequest(room_name="r", active=True))
    assert {e.egress_id for e in active.items} == {rc.egress_id, pe.egress_id, te.egress_id}
    stopped = await client.egress.stop_egress(api.StopEgressRequest(egress_id=rc.egress_id))
    assert stopped.status == api.EGRESS_ENDING
    with pytest.raises(api.ServerError) as err:
        await client.egress.stop_egress(api.StopEgressRequest(egress_id=rc.egress_id))
    assert (err.value.code, err.value.message) == (
        "failed_precondition",
        "egress with status EGRESS_COMPLETE cannot be stopped",
    )
    one = await client.egress.list_egress(api.ListEgressRequest(egress_id=rc.egress_id))
    assert [e.status for e in one.items] == [api.EGRESS_COMPLETE]
    with pytest.raises(api.ServerError) as err:
        await client.egress.start_room_composite_egress(api.RoomCompositeEgressRequest(room_name="nope"))
    assert err.value.code == "not_found"
    ended = [e.egress_info.egress_id for e in livekit_standin.events if e.event == "egress_ended"]
    assert ended == [rc.egress_id]


# ----------------------------------------------------------------- webhooks
@contextlib.asynccontextmanager
async def _receiver() -> AsyncIterator[tuple[str, list[tuple[str, str, str]]]]:
    """A tiny webhook receiver collecting (body, Authorization, Content-Type)."""
    received: list[tuple[str, str, str]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(
            (await request.text(), request.headers.get("Authorization", ""), request.headers["Content-Type"])
        )
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/hook", received
    finally:
        await runner.cleanup()


async def test_signed_webhook_verifies_and_tampering_fails(livekit_standin: LiveKitStandIn) -> None:
    lk = livekit_standin
    receiver = api.WebhookReceiver(api.TokenVerifier(lk.api_key, lk.api_secret))
    async with _receiver() as (url, received):
        lk.webhook_url = url
        caller = ParticipantInfo(identity="sip_+1555", kind=ParticipantInfo.Kind.SIP)
        status = await lk.send_webhook("participant_joined", room="call-9", participant=caller, id="EV_fixed")
        assert status == 204
        body, auth, content_type = received[0]
    assert content_type == "application/webhook+json"
    assert not auth.startswith("Bearer")
    event = receiver.receive(body, auth)
    assert (event.event, event.id, event.room.name, event.participant.identity) == (
        "participant_joined",
        "EV_fixed",
        "call-9",
        "sip_+1555",
    )
    assert event.created_at > 0
    with pytest.raises(Exception, match="hash mismatch"):
        receiver.receive(body.replace("sip_+1555", "sip_+1666"), auth)
    with pytest.raises(Exception):  # noqa: B017 - any verification error
        api.WebhookReceiver(api.TokenVerifier(lk.api_key, "x" * 40)).receive(body, auth)


async def test_auto_webhooks_follow_the_call() -> None:
    async with LiveKitStandIn(auto_webhooks=True) as lk, _receiver() as (url, received):
        lk.webhook_url = url
        receiver = api.WebhookReceiver(api.TokenVerifier(lk.api_key, lk.api_secret))
        joined = await lk.add_sip_caller("call-7", "+15557654321", IN_NUMBER, trunk_id="ST_in")
        assert [receiver.receive(b, a).event for b, a, _ in received] == [
            "room_started",
            "participant_joined",
        ]
        event = receiver.receive(*received[1][:2])
        assert event.participant.attributes["sip.phoneNumber"] == "+15557654321"
        assert event.participant.attributes["sip.trunkPhoneNumber"] == IN_NUMBER
        assert event.participant.attributes["sip.trunkID"] == "ST_in"
        assert event.participant.attributes["sip.callID"].startswith("SCL_")
        assert event.participant.sid == joined.sid

        async with api.LiveKitAPI(lk.url, lk.api_key, lk.api_secret) as client:
            eg = await client.egress.start_room_composite_egress(api.RoomCompositeEgressRequest(room_name="call-7"))
            await lk.hang_up("call-7", joined.identity)
            await client.egress.stop_egress(api.StopEgressRequest(egress_id=eg.egress_id))
        await lk.close_room("call-7")
        await lk.settle()
        events = [receiver.receive(b, a) for b, a, _ in received]
    assert [e.event for e in events] == [
        "room_started",
        "participant_joined",
        "egress_started",
        "egress_updated",
        "participant_left",
        "egress_ended",
        "room_finished",
    ]
    assert events[4].participant.attributes["sip.callStatus"] == "hangup"
    assert events[4].participant.disconnect_reason == DisconnectReason.CLIENT_INITIATED
    assert events[-1].room_end_reason == RoomEndReason.ROOM_END_IDLE_TIMEOUT
    assert all(d.status == 204 for d in lk.webhooks)
