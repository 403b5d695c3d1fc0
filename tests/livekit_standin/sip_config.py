"""``livekit.SIP`` trunk and dispatch-rule CRUD (livekit-server ``pkg/service/sip.go`` and the
validation in livekit/protocol ``livekit/sip.go`` / ``sip/sip.go``). All of it needs the ``sip.admin``
grant."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, MutableSequence
from typing import Any, TypeVar

from google.protobuf.message import Message
from livekit.protocol.models import ListUpdate
from livekit.protocol.sip import (
    CreateSIPDispatchRuleRequest,
    CreateSIPInboundTrunkRequest,
    CreateSIPOutboundTrunkRequest,
    DeleteSIPDispatchRuleRequest,
    DeleteSIPTrunkRequest,
    GetSIPInboundTrunkRequest,
    GetSIPInboundTrunkResponse,
    GetSIPOutboundTrunkRequest,
    GetSIPOutboundTrunkResponse,
    ListSIPDispatchRuleRequest,
    ListSIPDispatchRuleResponse,
    ListSIPInboundTrunkRequest,
    ListSIPInboundTrunkResponse,
    ListSIPOutboundTrunkRequest,
    ListSIPOutboundTrunkResponse,
    SIPDispatchRule,
    SIPDispatchRuleInfo,
    SIPInboundTrunkInfo,
    SIPOutboundTrunkInfo,
    SIPTrunkInfo,
    UpdateSIPDispatchRuleRequest,
    UpdateSIPInboundTrunkRequest,
    UpdateSIPOutboundTrunkRequest,
)

from . import ids
from .auth import CallContext
from .errors import TwirpError
from .registry import handles

SVC = "livekit.SIP"
TRUNK_NOT_FOUND = "requested sip trunk does not exist"
RULE_NOT_FOUND = "requested sip dispatch rule does not exist"

M = TypeVar("M", bound=Message)
_HEADER = re.compile(r"^[a-zA-Z][a-zA-Z0-9\-_]*$")


def _invalid(msg: str) -> TwirpError:
    return TwirpError("invalid_argument", msg)


def _copy(msg: M) -> M:
    out = type(msg)()
    out.CopyFrom(msg)
    return out


def check_headers(names: Iterable[str]) -> None:
    for name in names:
        if not _HEADER.match(name):
            raise _invalid(f'invalid header name: "{name}"')


def validate_inbound(t: SIPInboundTrunkInfo) -> None:
    if not (t.auth_username or t.auth_password or t.allowed_addresses or t.numbers):
        raise _invalid(
            "for security, one of the fields must be set: AuthUsername+AuthPassword, AllowedAddresses or Numbers"
        )
    check_headers([*t.headers, *t.headers_to_attributes, *t.attributes_to_headers.values()])


def validate_outbound(t: SIPOutboundTrunkInfo) -> None:
    if not t.numbers:
        raise _invalid("no trunk numbers specified")
    if not t.address:
        raise _invalid("no outbound address specified")
    if "transport=" in t.address:
        raise _invalid("trunk transport should be set as a field, not a URI parameter")
    if any(c in t.address for c in "@;") or t.address.startswith(("sip:", "sips:")):
        raise _invalid("trunk address should be a hostname or IP, not SIP URI")
    check_headers([*t.headers, *t.headers_to_attributes, *t.attributes_to_headers.values()])


def apply_list_update(target: MutableSequence[str], update: ListUpdate) -> None:
    values = [] if update.clear else list(target)
    if update.set:
        values = list(update.set)
    values = [v for v in values if v not in update.remove]
    values += [v for v in dict.fromkeys(update.add) if v not in values]
    del target[:]
    target.extend(values)


def apply_update(info: Message, update: Message) -> None:
    """Apply a ``*Update`` message field by field: only fields the client set are changed."""
    for fd in update.DESCRIPTOR.fields:
        value = getattr(update, fd.name)
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            target = getattr(info, fd.name)
            for key, v in value.items():
                if v:
                    target[key] = v
                else:
                    target.pop(key, None)
        elif not update.HasField(fd.name):
            continue
        elif isinstance(value, ListUpdate):
            apply_list_update(getattr(info, fd.name), value)
        elif isinstance(value, Message):
            getattr(info, fd.name).CopyFrom(value)
        else:
            setattr(info, fd.name, value)


def _stamp(info: SIPInboundTrunkInfo | SIPOutboundTrunkInfo | SIPDispatchRuleInfo, created: bool) -> None:
    info.updated_at.GetCurrentTime()
    if created:
        info.created_at.CopyFrom(info.updated_at)


# ------------------------------------------------------------------ trunks
@handles(SVC, "CreateSIPInboundTrunk")
async def create_inbound_trunk(ctx: CallContext, req: CreateSIPInboundTrunkRequest) -> SIPInboundTrunkInfo:
    ctx.require_sip_admin()
    if not req.HasField("trunk"):
        raise _invalid("missing trunk")
    if req.trunk.sip_trunk_id:
        raise _invalid("trunk id must not be set")
    validate_inbound(req.trunk)
    info = _copy(req.trunk)
    info.sip_trunk_id = ids.new_id(ids.SIP_TRUNK)
    _stamp(info, created=True)
    ctx.lk.state.inbound_trunks[info.sip_trunk_id] = info
    return info


@handles(SVC, "CreateSIPOutboundTrunk")
async def create_outbound_trunk(ctx: CallContext, req: CreateSIPOutboundTrunkRequest) -> SIPOutboundTrunkInfo:
    ctx.require_sip_admin()
    if not req.HasField("trunk"):
        raise _invalid("missing trunk")
    if req.trunk.sip_trunk_id:
        raise _invalid("trunk id must not be set")
    validate_outbound(req.trunk)
    info = _copy(req.trunk)
    info.sip_trunk_id = ids.new_id(ids.SIP_TRUNK)
    _stamp(info, created=True)
    ctx.lk.state.outbound_trunks[info.sip_trunk_id] = info
    return info


def _update_trunk(store: dict[str, Any], req: Any, validate: Callable[[Any], None]) -> Any:
    """``UpdateSIP{In,Out}boundTrunk``: replace the trunk, or apply the field update."""
    if not req.sip_trunk_id:
        raise _invalid("trunk id must be set")
    action = req.WhichOneof("action")
    if action is None:
        raise _invalid("missing or unsupported update action")
    if action == "replace" and req.replace.sip_trunk_id not in ("", req.sip_trunk_id):
        raise _invalid("trunk id in the info must be empty or match the id in the update")
    old = store.get(req.sip_trunk_id)
    if old is None:
        raise TwirpError("not_found", TRUNK_NOT_FOUND)
    new = _copy(old)
    if action == "replace":
        new.CopyFrom(req.replace)
        new.sip_trunk_id = req.sip_trunk_id
        new.created_at.CopyFrom(old.created_at)
    else:
        apply_update(new, req.update)
    validate(new)
    _stamp(new, created=False)
    store[req.sip_trunk_id] = new
    return new


@handles(SVC, "UpdateSIPInboundTrunk")
async def update_inbound_trunk(ctx: CallContext, req: UpdateSIPInboundTrunkRequest) -> SIPInboundTrunkInfo:
    ctx.require_sip_admin()
    return _update_trunk(ctx.lk.state.inbound_trunks, req, validate_inbound)


@handles(SVC, "UpdateSIPOutboundTrunk")
async def update_outbound_trunk(ctx: CallContext, req: UpdateSIPOutboundTrunkRequest) -> SIPOutboundTrunkInfo:
    ctx.require_sip_admin()
    return _update_trunk(ctx.lk.state.outbound_trunks, req, validate_outbound)


def _trunk_matches(trunk: SIPInboundTrunkInfo | SIPOutboundTrunkInfo, req: Any) -> bool:
    """The filters of ``ListSIPInboundTrunkRequest`` / ``ListSIPOutboundTrunkRequest``."""
    if req.trunk_ids and trunk.sip_trunk_id not in req.trunk_ids:
        return False
    return not (req.numbers and trunk.numbers and not set(req.numbers) & set(trunk.numbers))


@handles(SVC, "ListSIPInboundTrunk")
async def list_inbound_trunks(ctx: CallContext, req: ListSIPInboundTrunkRequest) -> ListSIPInboundTrunkResponse:
    ctx.require_sip_admin()
    trunks = sorted(ctx.lk.state.inbound_trunks.items())
    return ListSIPInboundTrunkResponse(items=[t for _, t in trunks if _trunk_matches(t, req)])


@handles(SVC, "ListSIPOutboundTrunk")
async def list_outbound_trunks(ctx: CallContext, req: ListSIPOutboundTrunkRequest) -> ListSIPOutboundTrunkResponse:
    ctx.require_sip_admin()
    trunks = sorted(ctx.lk.state.outbound_trunks.items())
    return ListSIPOutboundTrunkResponse(items=[t for _, t in trunks if _trunk_matches(t, req)])


@handles(SVC, "GetSIPInboundTrunk")
async def get_inbound_trunk(ctx: CallContext, req: GetSIPInboundTrunkRequest) -> GetSIPInboundTrunkResponse:
    ctx.require_sip_admin()
    if not req.sip_trunk_id:
        raise _invalid("trunk ID is required")
    if (trunk := ctx.lk.state.inbound_trunks.get(req.sip_trunk_id)) is None:
        raise TwirpError("not_found", TRUNK_NOT_FOUND)
    return GetSIPInboundTrunkResponse(trunk=trunk)


@handles(SVC, "GetSIPOutboundTrunk")
async def get_outbound_trunk(ctx: CallContext, req: GetSIPOutboundTrunkRequest) -> GetSIPOutboundTrunkResponse:
    ctx.require_sip_admin()
    if not req.sip_trunk_id:
        raise _invalid("trunk ID is required")
    if (trunk := ctx.lk.state.outbound_trunks.get(req.sip_trunk_id)) is None:
        raise TwirpError("not_found", TRUNK_NOT_FOUND)
    return GetSIPOutboundTrunkResponse(trunk=trunk)


@handles(SVC, "DeleteSIPTrunk")
async def delete_trunk(ctx: CallContext, req: DeleteSIPTrunkRequest) -> SIPTrunkInfo:
    ctx.require_sip_admin()
    if not req.sip_trunk_id:
        raise _invalid("trunk ID is required")
    # Like the Redis store: deleting an unknown ID is not an error.
    ctx.lk.state.inbound_trunks.pop(req.sip_trunk_id, None)
    ctx.lk.state.outbound_trunks.pop(req.sip_trunk_id, None)
    return SIPTrunkInfo(sip_trunk_id=req.sip_trunk_id)


# ---------------------------------------------------------- dispatch rules
def rule_pin(rule: SIPDispatchRule) -> str:
    kind = rule.WhichOneof("rule")
    return getattr(rule, kind).pin if kind else ""


def check_rule_conflicts(rules: list[SIPDispatchRuleInfo]) -> None:
    """Two rules may not share a Trunk+Number+PIN key; an empty list is its own (wildcard) key."""
    seen: dict[tuple[str, str, str], SIPDispatchRuleInfo] = {}
    for r in rules:
        for trunk in r.trunk_ids or [""]:
            for number in r.inbound_numbers or [""]:
                key = (rule_pin(r.rule), trunk, number)
                if (other := seen.get(key)) is not None:
                    a, b = r.sip_dispatch_rule_id or "<new>", other.sip_dispatch_rule_id or "<new>"
                    msg = "Conflicting SIP Dispatch Rules: same Trunk+Number+PIN combination"
                    # "for for" is verbatim; it is a plain Go error, which Twirp answers as internal
                    raise TwirpError("internal", f'{msg} for for "{a}" and "{b}"')
                seen[key] = r


@handles(SVC, "CreateSIPDispatchRule")
async def create_dispatch_rule(ctx: CallContext, req: CreateSIPDispatchRuleRequest) -> SIPDispatchRuleInfo:
    ctx.require_sip_admin()
    if req.HasField("dispatch_rule"):
        info = _copy(req.dispatch_rule)
        if info.sip_dispatch_rule_id:
            raise _invalid("rule id must not be set")
    else:  # the legacy flat form
        info = SIPDispatchRuleInfo(
            trunk_ids=req.trunk_ids,
            hide_phone_number=req.hide_phone_number,
            inbound_numbers=req.inbound_numbers,
            name=req.name,
            metadata=req.metadata,
            attributes=req.attributes,
            room_preset=req.room_preset,
        )
        if req.HasField("rule"):
            info.rule.CopyFrom(req.rule)
        if req.HasField("room_config"):
            info.room_config.CopyFrom(req.room_config)
    if not info.HasField("rule"):
        raise _invalid("missing rule")
    rules = ctx.lk.state.dispatch_rules
    check_rule_conflicts([r for _, r in sorted(rules.items())] + [info])
    info.sip_dispatch_rule_id = ids.new_id(ids.SIP_DISPATCH_RULE)
    _stamp(info, created=True)
    rules[info.sip_dispatch_rule_id] = info
    return info


@handles(SVC, "UpdateSIPDispatchRule")
async def update_dispatch_rule(ctx: CallContext, req: UpdateSIPDispatchRuleRequest) -> SIPDispatchRuleInfo:
    ctx.require_sip_admin()
    rule_id = req.sip_dispatch_rule_id
    if not rule_id:
        raise _invalid("rule id must be set")
    action = req.WhichOneof("action")
    if action is None:
        raise _invalid("missing or unsupported update action")
    if action == "replace" and req.replace.sip_dispatch_rule_id not in ("", rule_id):
        raise _invalid("rule id in the info must be empty or match the id in the update")
    rules = ctx.lk.state.dispatch_rules
    if (old := rules.get(rule_id)) is None:
        raise TwirpError("not_found", RULE_NOT_FOUND)
    new = _copy(old)
    if action == "replace":
        new.CopyFrom(req.replace)
        new.sip_dispatch_rule_id = rule_id
        new.created_at.CopyFrom(old.created_at)
    else:
        apply_update(new, req.update)
    if not new.HasField("rule"):
        raise _invalid("missing rule")
    check_rule_conflicts([r for i, r in sorted(rules.items()) if i != rule_id] + [new])
    _stamp(new, created=False)
    rules[rule_id] = new
    return new


@handles(SVC, "ListSIPDispatchRule")
async def list_dispatch_rules(ctx: CallContext, req: ListSIPDispatchRuleRequest) -> ListSIPDispatchRuleResponse:
    ctx.require_sip_admin()
    items = []
    for rule_id, rule in sorted(ctx.lk.state.dispatch_rules.items()):
        if req.dispatch_rule_ids and rule_id not in req.dispatch_rule_ids:
            continue
        if req.trunk_ids and rule.trunk_ids and not set(req.trunk_ids) & set(rule.trunk_ids):
            continue
        items.append(rule)
    return ListSIPDispatchRuleResponse(items=items)


@handles(SVC, "DeleteSIPDispatchRule")
async def delete_dispatch_rule(ctx: CallContext, req: DeleteSIPDispatchRuleRequest) -> SIPDispatchRuleInfo:
    ctx.require_sip_admin()
    if not req.sip_dispatch_rule_id:
        raise _invalid("dispatch rule ID is required")
    if (rule := ctx.lk.state.dispatch_rules.pop(req.sip_dispatch_rule_id, None)) is None:
        raise TwirpError("not_found", RULE_NOT_FOUND)
    return rule
