"""The flow interpreter's decisions, without a server: keys read by a gather, retries and no-input, branches on
variables, the caller and business hours in the flow's time zone (across daylight-saving changes)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from models.flows import FlowDocument, Gather
from workflows import flow_steps as fs

MENU: dict[str, Any] = {
    "name": "menu",
    "time_zone": "America/New_York",
    "business_hours": {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")} | {"sun": ["10:00-12:00"]},
    "steps": [
        {
            "id": "hours",
            "type": "branch",
            "routes": [{"when": {"business_hours": False}, "goto": "closed"}],
        },
        {
            "id": "menu",
            "type": "gather",
            "prompt": "Press 1 for sales, 2 for support.",
            "variable": "department",
            "choices": ["1", "2", "42"],
            "max_digits": 2,
            "retries": 1,
            "no_match_prompt": "Sorry, that is not an option.",
            "on_no_input": "assistant",
        },
        {
            "id": "route",
            "type": "branch",
            "routes": [
                {"when": {"variable": "department", "equals": "1"}, "goto": "sales"},
                {"when": {"caller_starts_with": "+44"}, "goto": "uk"},
            ],
            "default": "support",
        },
        {"id": "sales", "type": "set", "values": {"queue": "sales-{department}"}, "next": "assistant"},
        {"id": "support", "type": "set", "values": {"queue": "support"}, "next": "assistant"},
        {"id": "uk", "type": "set", "values": {"queue": "uk"}, "next": "assistant"},
        {"id": "assistant", "type": "agent", "agent_id": "ag_0123456789abcdef0123456789abcdef"},
        {"id": "closed", "type": "hangup"},
    ],
}


def doc() -> FlowDocument:
    return FlowDocument.model_validate(MENU)


def gather() -> Gather:
    step = doc().step("menu")
    assert isinstance(step, Gather)
    return step


def test_keys_complete_at_max_digits_or_terminator() -> None:
    step = gather()
    assert fs.read_keys(step, "") == fs.Keys("", False)
    assert fs.read_keys(step, "4") == fs.Keys("4", False)
    assert fs.read_keys(step, "42") == fs.Keys("42", True)
    assert fs.read_keys(step, "1#") == fs.Keys("1", True)
    assert fs.read_keys(step, "#") == fs.Keys("", True)
    assert fs.read_keys(step, "4219") == fs.Keys("42", True)  # typed ahead: the rest is not this gather's


def test_gather_retries_then_goes_on() -> None:
    d, step = doc(), gather()
    matched = fs.gather_outcome(d, step, "2", 0)
    assert matched.kind == "input" and matched.move == fs.Move("route", "input -> route", {"department": "2"})
    wrong = fs.gather_outcome(d, step, "7", 0)
    assert (wrong.kind, wrong.retry_prompt, wrong.move) == ("no_match", "Sorry, that is not an option.", None)
    spent = fs.gather_outcome(d, step, "7", 1)
    assert spent.move is not None and spent.move.next == "route"  # no on_no_match: next
    silent = fs.gather_outcome(d, step, "", 0)
    assert (silent.kind, silent.retry_prompt) == ("no_input", "")  # retried with the prompt alone
    gave_up = fs.gather_outcome(d, step, "", 1)
    assert gave_up.move is not None and gave_up.move.next == "assistant"


def test_branches_on_variables_and_caller() -> None:
    d = doc()
    route = d.step("route")
    now = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    assert fs.branch(d, route, fs.FlowContext(now, "+14155550100", {"department": "1"})).next == "sales"  # type: ignore[arg-type]
    assert fs.branch(d, route, fs.FlowContext(now, "+442071234567", {"department": "2"})).next == "uk"  # type: ignore[arg-type]
    assert fs.branch(d, route, fs.FlowContext(now, "+14155550100", {"department": "2"})).next == "support"  # type: ignore[arg-type]
    move = fs.set_values(d, d.step("sales"), fs.FlowContext(now, "+1", {"department": "1"}))  # type: ignore[arg-type]
    assert move == fs.Move("assistant", "set queue -> assistant", {"queue": "sales-1"})


def test_business_hours_follow_the_zone_across_daylight_saving() -> None:
    d = doc()
    # 2026-03-08: New York springs forward at 02:00 (EST -5 → EDT -4). Monday 9 March, 13:30 UTC is 09:30 EDT
    # (open), where the same UTC time a week earlier was 08:30 EST (closed).
    assert fs.is_open(d, datetime(2026, 3, 9, 13, 30, tzinfo=UTC))
    assert not fs.is_open(d, datetime(2026, 3, 2, 13, 30, tzinfo=UTC))
    # Closing time moves too: 17:00 local is 21:00 UTC after the change, 22:00 UTC before it.
    assert fs.is_open(d, datetime(2026, 3, 9, 20, 59, tzinfo=UTC))
    assert not fs.is_open(d, datetime(2026, 3, 9, 21, 0, tzinfo=UTC))  # 17:00 EDT: closed
    assert fs.is_open(d, datetime(2026, 3, 6, 21, 59, tzinfo=UTC))  # Friday 16:59 EST: open
    # 2026-11-01: back to EST. Sunday hours 10:00-12:00: 14:30 UTC is 10:30 EDT on 25 Oct, 09:30 EST on 1 Nov.
    assert fs.is_open(d, datetime(2026, 10, 25, 14, 30, tzinfo=UTC))
    assert not fs.is_open(d, datetime(2026, 11, 1, 14, 30, tzinfo=UTC))
    assert fs.is_open(d, datetime(2026, 11, 1, 15, 30, tzinfo=UTC))
    # Saturday: no hours at all.
    assert not fs.is_open(d, datetime(2026, 3, 7, 16, 0, tzinfo=UTC))
    hours = d.step("hours")
    night = fs.FlowContext(datetime(2026, 3, 9, 23, 0, tzinfo=UTC), "+14155550100")
    assert fs.branch(d, hours, night) == fs.Move("closed", "route 1 -> closed")  # type: ignore[arg-type]
    day = fs.FlowContext(datetime(2026, 3, 9, 15, 0, tzinfo=UTC), "+14155550100")
    assert fs.branch(d, hours, day) == fs.Move("menu", "default -> menu")  # type: ignore[arg-type]


def test_webhook_answers_become_prefixed_variables() -> None:
    d = FlowDocument.model_validate(
        {
            "name": "lookup",
            "steps": [
                {
                    "id": "lookup",
                    "type": "webhook",
                    "url": "https://crm.example.com/lookup",
                    "routes": [{"when": {"variable": "crm_tier", "equals": "gold"}, "goto": "vip"}],
                    "prefix": "crm_",
                    "on_failure": "bye",
                },
                {"id": "normal", "type": "say", "text": "Hello.", "next": "bye"},
                {"id": "vip", "type": "say", "text": "Hello, valued customer {crm_name}.", "next": "bye"},
                {"id": "bye", "type": "hangup"},
            ],
        }
    )
    step = d.step("lookup")
    ctx = fs.FlowContext(datetime(2026, 1, 1, tzinfo=UTC), "+1")
    gold = fs.webhook_answer(d, step, {"tier": "gold", "name": "Ada", "nested": {"x": 1}}, ctx)  # type: ignore[arg-type]
    assert gold.next == "vip" and gold.variables == {"crm_tier": "gold", "crm_name": "Ada"}
    assert fs.webhook_answer(d, step, {"tier": "tin"}, ctx).next == "normal"  # type: ignore[arg-type]
    assert fs.webhook_answer(d, step, None, ctx).next == "bye"  # type: ignore[arg-type]


def test_speech_maps_to_a_choice_or_is_the_words_themselves() -> None:
    step = Gather.model_validate(
        {
            "id": "m",
            "type": "gather",
            "prompt": "Say sales or support.",
            "speech": True,
            "speech_choices": {"sales": "1", "customer support": "2"},
        }
    )
    assert fs.read_speech(step, "Sales, please.") == "1"
    assert fs.read_speech(step, "I need CUSTOMER SUPPORT!") == "2"
    assert fs.read_speech(step, "Wholesales?") == "wholesales"  # whole words only
    assert fs.read_speech(step, "Billing, I think.") == "billing i think"
