"""SMS numbers routed to a flow, end to end (signed webhooks from the Twilio stand-in, SmsThreadWorkflow on the real
dev server, replies through the carrier's Messages API): ``say`` replies, ``gather`` takes the next message (keys
or words, retried on a no-match), branch/set work, ``agent`` hands the thread to the SMS agent, and voice-only
steps are skipped with a note."""

from __future__ import annotations

from typing import Any

from tests.api.resources import agent_body, create
from tests.sms.conftest import KB, LineFactory, SmsLine, party
from tests.support.stack import eventually

HOURS = "We open at nine and close at five. Closed on Sundays."
HELLO = "Thanks for texting Acme."
MENU = "Reply 1 for sales or 2 for support."


def _flow(agent_id: str) -> dict[str, Any]:
    return {
        "name": "texts",
        "steps": [
            {"id": "hello", "type": "say", "text": HELLO},
            {
                "id": "menu",
                "type": "gather",
                "prompt": MENU,
                "variable": "choice",
                "choices": ["1", "2"],
                "speech_choices": {"sales": "1", "support": "2"},
                "retries": 1,
                "no_match_prompt": "Sorry, that is not an option.",
            },
            {
                "id": "route",
                "type": "branch",
                "routes": [{"when": {"variable": "choice", "equals": "1"}, "goto": "sales"}],
                "default": "support",
            },
            {"id": "sales", "type": "set", "values": {"team": "sales"}, "next": "assistant"},
            {"id": "support", "type": "transfer", "target": "+14155550100", "on_failure": "closed"},
            {"id": "closed", "type": "say", "text": "Support is closed today.", "next": "bye"},
            {"id": "assistant", "type": "agent", "agent_id": agent_id},
            {"id": "bye", "type": "hangup"},
        ],
    }


async def _flow_line(line_factory: LineFactory, **sms: int) -> tuple[SmsLine, str]:
    line = await line_factory(agent=False, sms_settings={"messages_per_second": 20, "burst": 10, **sms})
    agent = await create(line.client, line.space, "agents", agent_body() | {"knowledge_base": KB})
    flow = await create(line.client, line.space, "flows", _flow(agent["id"]))
    routed = await line.client.patch(
        line.space.path(f"/phone-numbers/{line.number_id}"), json={"flow_id": flow["id"]}, headers=line.space.admin
    )
    assert routed.status_code == 200, routed.text
    return line, agent["id"]


async def _replies(line: SmsLine, to: str, count: int) -> list[str]:
    async def probe() -> list[str] | None:
        bodies = [x.body for x in line.carrier_messages(to)]
        return bodies if len(bodies) >= count else None

    return await eventually(probe, 20.0)


async def test_a_flow_answers_texts_retries_a_no_match_and_hands_the_thread_to_the_agent(
    line_factory: LineFactory,
) -> None:
    line, agent_id = await _flow_line(line_factory, max_messages_per_run=4)  # the flow's state crosses runs
    caller = party()
    await line.text_in(caller, "hi")
    assert await _replies(line, caller, 2) == [HELLO, MENU]
    await line.text_in(caller, "9")
    assert (await _replies(line, caller, 4))[2:] == ["Sorry, that is not an option.", MENU]
    await line.text_in(caller, "Sales, please")  # words: matched against the menu's speech choices
    view = await eventually(lambda: _handed(line, caller))
    assert view.agent_id == agent_id
    await line.text_in(caller, "What are your opening hours?")  # the agent answers from now on
    assert (await eventually(lambda: _last_reply(line, caller, HOURS))) == HOURS

    final = await line.view(caller)
    steps = final.flow_steps
    assert final.runs >= 2
    assert steps[0].startswith("flow ") and "v1 started" in steps[0], steps
    assert "menu (gather): no_match '9', retry" in steps, steps
    assert "menu (gather): input '1', input -> route" in steps, steps
    assert f"assistant (agent): handed to agent {agent_id} with choice, team" in steps, steps


async def test_voice_only_steps_are_skipped_and_a_finished_flow_starts_again(line_factory: LineFactory) -> None:
    line, _ = await _flow_line(line_factory)
    caller = party()
    await line.text_in(caller, "hello")
    await _replies(line, caller, 2)
    await line.text_in(caller, "2")
    assert (await _replies(line, caller, 3))[2] == "Support is closed today."
    await line.text_in(caller, "hello again")  # the flow ended (hang-up): the next text starts it again
    assert (await _replies(line, caller, 5))[3:] == [HELLO, MENU]

    view = await line.view(caller)
    assert view.agent_id is None
    assert "support (transfer): voice only, skipped on SMS -> closed" in view.flow_steps, view.flow_steps
    assert "bye (hangup): flow ended" in view.flow_steps, view.flow_steps
    assert sum(s.endswith("started") for s in view.flow_steps) == 2, view.flow_steps


async def _handed(line: SmsLine, caller: str) -> Any:
    view = await line.view(caller)
    return view if view.agent_id else None


async def _last_reply(line: SmsLine, caller: str, expected: str) -> str | None:
    bodies = [x.body for x in line.carrier_messages(caller)]
    return expected if bodies and bodies[-1] == expected else None
