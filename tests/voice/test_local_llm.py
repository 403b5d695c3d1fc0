"""The deterministic local responder: intents, tool calls, sentence streaming, determinism, provider choice."""

from __future__ import annotations

import json
from typing import Any

import pytest
from livekit.agents import llm

from models.enums import CallState
from voice.agent import PhoneAgent
from voice.agent_config import AgentConfig, KnowledgeEntry
from voice.call_control import ActionResult
from voice.knowledge import KnowledgeBase
from voice.local_llm import (
    DONT_KNOW,
    GOODBYE_LINE,
    TRANSFER_LINE,
    Intent,
    LocalKnowledgeLLM,
    build_llm,
    detect_intent,
)

HOURS = "We are open Monday to Friday from 9 am to 5 pm. We are closed on weekends. Holidays are posted online."
CONFIG = AgentConfig(
    id="ag_1",
    space_id="sp_1",
    name="Acme",
    knowledge=(KnowledgeEntry("Opening hours", HOURS), KnowledgeEntry("Parking", "Parking is free behind the shop.")),
)


class NoControl:
    async def transfer(self, target: str, mode: str = "cold") -> ActionResult:
        raise AssertionError("not called by the LLM")

    async def hang_up(self) -> ActionResult:
        raise AssertionError("not called by the LLM")

    async def hold(self) -> ActionResult:
        raise AssertionError("not called by the LLM")

    async def send_dtmf(self, digits: str) -> ActionResult:
        return ActionResult(True, "sent", CallState.ACTIVE)

    async def pause_recording(self) -> ActionResult:
        raise AssertionError("not called by the LLM")

    async def resume_recording(self) -> ActionResult:
        raise AssertionError("not called by the LLM")

    async def mark_active(self) -> None:
        return None


def agent_tools() -> list[llm.Tool]:
    agent = PhoneAgent(CONFIG, NoControl(), KnowledgeBase(CONFIG.knowledge))
    return [t for t in agent.tools if isinstance(t, llm.Tool)]


def ctx_with(*user_lines: str) -> llm.ChatContext:
    ctx = llm.ChatContext.empty()
    ctx.add_message(role="system", content="instructions")
    for line in user_lines:
        ctx.add_message(role="user", content=line)
    return ctx


async def chunks(model: llm.LLM, ctx: llm.ChatContext, **kwargs: Any) -> list[llm.ChatChunk]:
    out = []
    async with model.chat(chat_ctx=ctx, tools=agent_tools(), **kwargs) as stream:
        async for chunk in stream:
            out.append(chunk)
    return out


def texts(found: list[llm.ChatChunk]) -> list[str]:
    return [c.delta.content for c in found if c.delta and c.delta.content]


def calls(found: list[llm.ChatChunk]) -> list[tuple[str, dict[str, Any]]]:
    return [(t.name, json.loads(t.arguments)) for c in found if c.delta for t in c.delta.tool_calls]


@pytest.mark.parametrize(
    ("said", "intent"),
    [
        ("I'd like to speak to a person", Intent("transfer_call", {"target": "", "mode": "cold"}, TRANSFER_LINE)),
        ("Can you transfer me please", Intent("transfer_call", {"target": "", "mode": "cold"}, TRANSFER_LINE)),
        ("Let me talk to a human.", Intent("transfer_call", {"target": "", "mode": "cold"}, TRANSFER_LINE)),
        ("representative!", Intent("transfer_call", {"target": "", "mode": "cold"}, TRANSFER_LINE)),
        ("transfer me to +1 415 555 0100",
         Intent("transfer_call", {"target": "+14155550100", "mode": "cold"}, TRANSFER_LINE)),
        ("Goodbye", Intent("end_call", {}, GOODBYE_LINE)),
        ("OK that's all, bye", Intent("end_call", {}, GOODBYE_LINE)),
        ("please hang up", Intent("end_call", {}, GOODBYE_LINE)),
        ("Hold on a second", Intent("hold_call", {}, "Of course, I'll put you on hold now.")),
        ("Could you put me on hold", Intent("hold_call", {}, "Of course, I'll put you on hold now.")),
        ("press 1 2 3", Intent("send_dtmf", {"digits": "123"})),
        ("send digits 123#", Intent("send_dtmf", {"digits": "123#"})),
        ("Press one two three", Intent("send_dtmf", {"digits": "123"})),
        ("dial star five pound", Intent("send_dtmf", {"digits": "*5#"})),
        ("What are your opening hours?", None),
        ("Is parking free?", None),
        ("press the button", None),
    ],
)  # fmt: skip
def test_intents(said: str, intent: Intent | None) -> None:
    assert detect_intent(said) == intent


async def test_answers_from_the_knowledge_base_one_sentence_per_chunk() -> None:
    model = LocalKnowledgeLLM(KnowledgeBase(CONFIG.knowledge))
    found = await chunks(model, ctx_with("What are your opening hours?"))
    assert texts(found) == ["We are open Monday to Friday from 9 am to 5 pm. ", "We are closed on weekends."]
    assert calls(found) == [] and {c.id for c in found} == {"local-1"}
    unknown = await chunks(model, ctx_with("What's the weather on Mars?"))
    assert "".join(texts(unknown)) == DONT_KNOW and "transfer" in DONT_KNOW
    assert len(texts(unknown)) == 2


async def test_deterministic() -> None:
    questions = ["What are your opening hours?", "Is parking free?", "hmm what about tigers", "goodbye"]
    runs = []
    for _ in range(2):
        model = LocalKnowledgeLLM(KnowledgeBase(CONFIG.knowledge))
        runs.append([[c.model_dump() for c in await chunks(model, ctx_with(q))] for q in questions])
    assert runs[0] == runs[1]


async def test_intents_become_calls_to_the_agents_tools() -> None:
    model = LocalKnowledgeLLM(KnowledgeBase(CONFIG.knowledge))
    transfer = await chunks(model, ctx_with("What are your hours?", "I'd like to speak to a person"))
    assert texts(transfer) == ["Of course. ", "Let me transfer you to someone who can help."]
    assert calls(transfer) == [("transfer_call", {"target": "", "mode": "cold"})]
    assert transfer[-1].delta is not None and transfer[-1].delta.tool_calls[0].call_id == "local_call_1"
    dtmf = await chunks(model, ctx_with("press 1 2 3"))
    assert texts(dtmf) == [] and calls(dtmf) == [("send_dtmf", {"digits": "123"})]
    # "yes" to the offer of a transfer is a transfer.
    ctx = ctx_with("What's the weather on Mars?")
    ctx.add_message(role="assistant", content=DONT_KNOW)
    ctx.add_message(role="user", content="Yes please")
    assert calls(await chunks(model, ctx)) == [("transfer_call", {"target": "", "mode": "cold"})]
    # Without the tool (or with tool_choice "none") it says so instead of calling it.
    no_tools = [c async for c in model.chat(chat_ctx=ctx_with("press 5"), tools=[])]
    assert calls(no_tools) == [] and "can't do that" in "".join(texts(no_tools))
    bye = await chunks(model, ctx_with("bye"), tool_choice="none")
    assert calls(bye) == [] and "".join(texts(bye)) == GOODBYE_LINE


async def test_confirms_or_apologises_after_a_tool_ran() -> None:
    model = LocalKnowledgeLLM(KnowledgeBase(CONFIG.knowledge))

    def after(name: str, arguments: dict[str, Any], output: str) -> llm.ChatContext:
        ctx = ctx_with("do it")
        ctx.items.append(llm.FunctionCall(call_id="c1", name=name, arguments=json.dumps(arguments)))
        ctx.items.append(llm.FunctionCallOutput(call_id="c1", name=name, output=output, is_error=False))
        return ctx

    sent = await chunks(model, after("send_dtmf", {"digits": "12#"}, "OK: sent the tones 12#"))
    assert "".join(texts(sent)) == "Done. I've sent 1 2 #."
    failed = await chunks(model, after("transfer_call", {}, "FAILED: the transfer failed (SIP 486): busy"))
    assert "".join(texts(failed)).startswith("I'm sorry, I wasn't able to transfer your call")
    looked = await chunks(model, after("lookup_knowledge", {"question": "hours"}, f"Opening hours: {HOURS}"))
    assert "".join(texts(looked)).startswith("We are open Monday to Friday")


def test_build_llm_by_provider() -> None:
    kb = KnowledgeBase(CONFIG.knowledge)
    assert isinstance(build_llm(CONFIG, kb), LocalKnowledgeLLM)
    cloud = AgentConfig(
        id="ag", space_id="sp", name="x", llm_provider="openai-compatible", llm_base_url="http://127.0.0.1:9/v1"
    )
    with pytest.raises(ValueError, match="llm_model"):
        build_llm(cloud, kb)
    try:
        import livekit.plugins.openai  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="livekit-plugins-openai"):
            build_llm(AgentConfig(**{**cloud.__dict__, "llm_model": "m"}), kb)
    with pytest.raises(ValueError, match="unknown llm_provider"):
        build_llm(AgentConfig(id="ag", space_id="sp", name="x", llm_provider="psychic"), kb)
