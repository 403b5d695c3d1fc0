"""The default LLM (``llm_provider == "local-kb"``): a deterministic responder that answers from the knowledge
base and recognises call-control intents, as a livekit-agents ``llm.LLM``.

It behaves like a tool-calling model, so the agent's tools run exactly as they would with a cloud LLM:
- an intent in the caller's last message (transfer, hang up, hold, DTMF) becomes a **function call** to the
  agent's tool (transfer, hang-up and hold first say a short line, which the tool waits to be played);
- after a tool ran, a short confirmation (or apology) from the tool's output;
- otherwise the first sentences of the best knowledge-base entry, or "I don't know" plus an offer to transfer.
Replies stream one sentence per chunk so TTS starts on the first sentence. No randomness, no clocks.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from livekit.agents import llm
from livekit.agents.llm.tool_context import get_fnc_tool_names
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions, NotGivenOr

from voice.agent_config import LOCAL_KB, OPENAI_COMPATIBLE, AgentConfig
from voice.knowledge import KnowledgeBase

# The agent's tool names (voice.agent.PhoneAgent): the contract between this responder and the tools.
TOOL_TRANSFER = "transfer_call"
TOOL_END_CALL = "end_call"
TOOL_HOLD = "hold_call"
TOOL_DTMF = "send_dtmf"
TOOL_LOOKUP = "lookup_knowledge"
FAILED_PREFIX = "FAILED"  # tool outputs starting with this report a failed action

GREETING_REPLY = "Hello! How can I help you today?"
DONT_KNOW = "I'm sorry, I don't know the answer to that. Would you like me to transfer you to someone who can help?"
TRANSFER_LINE = "Of course. Let me transfer you to someone who can help."
GOODBYE_LINE = "Thank you for calling. Goodbye!"
HOLD_LINE = "Of course, I'll put you on hold now."
ANYTHING_ELSE = "Is there anything else I can help you with?"
MAX_ANSWER_SENTENCES = 2
MAX_ANSWER_CHARS = 300

_DIGIT_WORDS = {
    "zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "star": "*", "asterisk": "*", "pound": "#", "hash": "#",
}  # fmt: skip
_DTMF = re.compile(
    r"\b(?:press|dial|enter|send(?:\s+the)?\s+(?:digits?|tones?|dtmf|keys?))\b[:\s]+"
    r"((?:(?:[0-9*#]+|(?:" + "|".join(_DIGIT_WORDS) + r")\b)[\s,.-]*)+)"
)
_TRANSFER = [
    re.compile(
        r"\b(?:speak|talk|connect|put me through|get me|transfer)\b.*\b(?:person|human|agent|operator|someone|"
        r"somebody|representative|staff|manager)\b"
    ),
    re.compile(r"\btransfer me\b|\btransfer (?:the|my) call\b|\brepresentative\b|\boperator\b|\breal person\b"),
]
_HOLD = re.compile(r"\b(?:hold on|put me on hold|place me on hold|hang on|can you hold)\b")
_HANGUP = re.compile(
    r"\b(?:bye|goodbye|good bye|bye bye|that's all|thats all|that is all|hang up|end the call|end this call)\b"
)
_GREETING = re.compile(r"^\W*(?:hi|hello|hey|good (?:morning|afternoon|evening))\W*(?:there)?\W*$")
_YES = re.compile(r"^\W*(?:yes|yeah|yep|sure|please|yes please|ok|okay|please do)\b")
_E164 = re.compile(r"\+\d[\d\s().-]{6,}\d")
_SIP = re.compile(r"\bsip:[\w.+-]+@[\w.-]+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Intent:
    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)
    preface: str = ""  # said before the tool runs (the tool waits for it to be played)


def _normalise(text: str) -> str:
    return " ".join(text.lower().replace("\u2019", "'").split())


def _dtmf_digits(spoken: str) -> str:
    out = []
    for token in re.findall(r"[0-9*#]+|[a-z]+", spoken):
        out.append(_DIGIT_WORDS.get(token, token if token[0] in "0123456789*#" else ""))
    return "".join(out)


def _transfer_target(original: str) -> str:
    if found := _SIP.search(original):
        return found.group(0)
    if found := _E164.search(original):
        return "+" + re.sub(r"\D", "", found.group(0))
    return ""


def detect_intent(text: str) -> Intent | None:
    """The call-control intent of a caller's utterance, or ``None`` (checked DTMF, transfer, hold, hang-up)."""
    said = _normalise(text)
    if (match := _DTMF.search(said)) and (digits := _dtmf_digits(match.group(1))):
        return Intent(TOOL_DTMF, {"digits": digits})
    if any(p.search(said) for p in _TRANSFER):
        return Intent(TOOL_TRANSFER, {"target": _transfer_target(text), "mode": "cold"}, TRANSFER_LINE)
    if _HOLD.search(said):
        return Intent(TOOL_HOLD, {}, HOLD_LINE)
    if _HANGUP.search(said):
        return Intent(TOOL_END_CALL, {}, GOODBYE_LINE)
    return None


def split_sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(text.strip()) if s]


def answer_from(content: str) -> str:
    """The first sentence(s) of an entry: enough to answer, short enough to say."""
    sentences = split_sentences(content)
    answer = sentences[0] if sentences else content.strip()
    for sentence in sentences[1:MAX_ANSWER_SENTENCES]:
        if len(answer) + 1 + len(sentence) > MAX_ANSWER_CHARS:
            break
        answer = f"{answer} {sentence}"
    return answer


def _confirmation(output: llm.FunctionCallOutput, arguments: dict[str, Any]) -> str:
    failed = output.is_error or output.output.startswith(FAILED_PREFIX)
    if output.name == TOOL_LOOKUP:
        if failed or output.output.startswith("No matching"):
            return DONT_KNOW
        return answer_from(output.output.split("\n\n", 1)[0].split(": ", 1)[-1])
    if failed:
        action = {
            TOOL_TRANSFER: "transfer your call",
            TOOL_END_CALL: "end the call",
            TOOL_HOLD: "put you on hold",
            TOOL_DTMF: "send those tones",
        }.get(output.name, "do that")
        return f"I'm sorry, I wasn't able to {action} right now. {ANYTHING_ELSE}"
    if output.name == TOOL_DTMF:
        return f"Done. I've sent {' '.join(str(arguments.get('digits', '')))}."
    if output.name == TOOL_TRANSFER:
        return "You're being connected now."
    return f"Done. {ANYTHING_ELSE}"


@dataclass(frozen=True)
class Plan:
    """What the responder will stream: text (sentence by sentence), then at most one tool call."""

    text: str = ""
    tool: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)


def _last_message_text(items: Sequence[llm.ChatItem], role: str) -> str | None:
    for item in reversed(items):
        if item.type == "message" and item.role == role:
            return item.text_content or ""
    return None


def plan_reply(chat_ctx: llm.ChatContext, kb: KnowledgeBase, tools: set[str], tool_choice: str = "auto") -> Plan:
    """Decide the reply to the conversation so far (pure: the same context always gives the same plan)."""
    items = [i for i in chat_ctx.items if i.type in ("message", "function_call", "function_call_output")]
    convo = [i for i in items if i.type != "message" or i.role in ("user", "assistant")]
    last = convo[-1] if convo else None
    if last is not None and last.type == "function_call_output":
        calls = {i.call_id: i for i in convo if i.type == "function_call"}
        call = calls.get(last.call_id)
        arguments = json.loads(call.arguments or "{}") if call is not None else {}
        return Plan(_confirmation(last, arguments))
    user_text = _last_message_text(convo, "user")
    if user_text is None:
        return Plan(GREETING_REPLY)
    intent = detect_intent(user_text)
    if intent is None and _YES.search(_normalise(user_text)):
        before = convo[:-1] if last is not None and last.type == "message" and last.role == "user" else convo
        if (_last_message_text(before, "assistant") or "").endswith(DONT_KNOW.split(". ")[-1]):
            intent = Intent(TOOL_TRANSFER, {"target": "", "mode": "cold"}, TRANSFER_LINE)
    if intent is not None:
        if intent.tool in tools and tool_choice != "none":
            return Plan(intent.preface, intent.tool, intent.arguments)
        if intent.tool == TOOL_END_CALL:
            return Plan(GOODBYE_LINE)
        return Plan(f"I'm sorry, I can't do that on this call. {ANYTHING_ELSE}")
    if _GREETING.search(_normalise(user_text)):
        return Plan(GREETING_REPLY)
    entry = kb.best(user_text)
    if entry is None:
        return Plan(DONT_KNOW)
    return Plan(answer_from(entry.content))


class LocalKnowledgeLLM(llm.LLM):
    """A deterministic ``llm.LLM`` over a :class:`KnowledgeBase` (see the module docstring)."""

    def __init__(self, knowledge: KnowledgeBase) -> None:
        super().__init__()
        self.knowledge = knowledge
        self._requests = itertools.count(1)
        self._calls = itertools.count(1)

    @property
    def model(self) -> str:
        return LOCAL_KB

    @property
    def provider(self) -> str:
        return "bivariant"

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[llm.ToolChoice] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> LocalKnowledgeStream:
        choice = tool_choice if isinstance(tool_choice, str) else "auto"
        plan = plan_reply(chat_ctx, self.knowledge, set(get_fnc_tool_names(tools or [])), choice)
        request_id = f"local-{next(self._requests)}"
        call_id = f"local_call_{next(self._calls)}" if plan.tool else ""
        return LocalKnowledgeStream(
            self,
            plan=plan,
            request_id=request_id,
            call_id=call_id,
            chat_ctx=chat_ctx,
            tools=tools or [],
            conn_options=conn_options,
        )


class LocalKnowledgeStream(llm.LLMStream):
    def __init__(
        self,
        llm_: LocalKnowledgeLLM,
        *,
        plan: Plan,
        request_id: str,
        call_id: str,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool],
        conn_options: APIConnectOptions,
    ) -> None:
        super().__init__(llm_, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options)
        self.plan = plan
        self._request_id = request_id
        self._call_id = call_id

    async def _run(self) -> None:
        sentences = split_sentences(self.plan.text)
        for n, sentence in enumerate(sentences):
            text = sentence if n == len(sentences) - 1 else sentence + " "
            self._event_ch.send_nowait(
                llm.ChatChunk(id=self._request_id, delta=llm.ChoiceDelta(role="assistant", content=text))
            )
        if self.plan.tool:
            call = llm.FunctionToolCall(
                name=self.plan.tool, arguments=json.dumps(self.plan.arguments, sort_keys=True), call_id=self._call_id
            )
            self._event_ch.send_nowait(
                llm.ChatChunk(id=self._request_id, delta=llm.ChoiceDelta(role="assistant", tool_calls=[call]))
            )


def build_llm(config: AgentConfig, knowledge: KnowledgeBase) -> llm.LLM:
    """The agent's LLM: the local responder, or an OpenAI-compatible endpoint (``livekit-plugins-openai``)."""
    if config.llm_provider == LOCAL_KB:
        return LocalKnowledgeLLM(knowledge)
    if config.llm_provider == OPENAI_COMPATIBLE:
        if not (config.llm_base_url and config.llm_model):
            raise ValueError("an openai-compatible LLM needs llm_base_url and llm_model")
        try:
            from livekit.plugins import openai  # type: ignore[attr-defined,unused-ignore]  # optional extra
        except ImportError as exc:
            raise RuntimeError(
                "llm_provider 'openai-compatible' needs livekit-plugins-openai: "
                "pip install 'bivariant-telephony[openai]' (or livekit-plugins-openai)"
            ) from exc
        openai_llm: llm.LLM = openai.LLM(
            model=config.llm_model, base_url=config.llm_base_url, api_key=config.llm_api_key or "none"
        )
        return openai_llm
    raise ValueError(f"unknown llm_provider {config.llm_provider!r} (expected {LOCAL_KB!r} or {OPENAI_COMPATIBLE!r})")
