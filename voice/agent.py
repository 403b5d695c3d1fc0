"""``PhoneAgent``: the livekit-agents ``Agent`` that answers a call, built from the space's agent config.

Dependencies are injected (config, call control, knowledge base, LLM, history): the entrypoint chooses them.
Each tool acts through :class:`voice.call_control.CallControl` (the CallWorkflow); tool docstrings are the
contract a cloud LLM sees, and ``voice.local_llm`` calls the same tools by name.

Transports set a call up through ``voice.call_setup.answer_call``, which prepares the call (``prepare_call``),
builds the ``AgentSession``, records transcripts and marks the call active on the agent's first words.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from livekit import rtc
from livekit.agents import Agent, AgentSession, RunContext, function_tool, llm
from livekit.agents.llm import StopResponse, ToolResult
from livekit.agents.types import NOT_GIVEN
from livekit.agents.voice.events import AgentStateChangedEvent

from models.call_contract import DispatchMetadata
from models.enums import CallState, MessageRole
from voice.agent_config import AgentConfig, ContextMessage, load_agent_config, recent_messages
from voice.agent_transcripts import DbTranscriptSink, TranscriptRecorder, TranscriptSink, record_transcripts
from voice.call_control import ActionResult, CallControl, TemporalCallControl
from voice.flow_context import with_flow_variables
from voice.knowledge import KnowledgeBase, format_results
from voice.local_llm import build_llm
from voice.recording_consent import ConsentGate
from voice.runtime import VoiceRuntime
from voice.spoken_lines import replay

log = logging.getLogger(__name__)

__all__ = [
    "PhoneAgent",
    "PreparedCall",
    "TranscriptRecorder",
    "TranscriptSink",
    "build_instructions",
    "history_context",
    "mark_active_on_first_speech",
    "prepare_call",
    "record_transcripts",
]

PHONE_STYLE = (
    "You are speaking with a caller on a phone line. Keep replies short and conversational: one to three "
    "sentences, no lists, no markdown, no emoji; spell out numbers the way they are spoken.\n"
    "Answer questions from the knowledge base (call lookup_knowledge); never invent facts. If it does not "
    "cover the question, say you don't know and offer to transfer the caller to a person.\n"
    "Use the tools to act on the call: transfer_call when the caller asks for a person, an operator or a "
    "representative (or accepts your offer); end_call when the caller says goodbye or is done; hold_call when "
    "the caller asks to be put on hold; send_dtmf when the caller asks you to press keys. Before a transfer, a "
    "hang-up or a hold, tell the caller in a few words what you are doing. If a tool reports FAILED, apologise "
    "briefly and offer something else."
)


def build_instructions(config: AgentConfig) -> str:
    own = config.instructions.strip()
    name = f"Your name is {config.name}." if config.name else ""
    return "\n\n".join(part for part in (own, name, PHONE_STYLE) if part)


def default_greeting(config: AgentConfig) -> str:
    return config.greeting.strip() or f"Hello, you've reached {config.name or 'us'}. How can I help you today?"


def history_context(history: Sequence[ContextMessage]) -> llm.ChatContext:
    """The conversation's earlier messages (previous calls, SMS) as chat context for the LLM."""
    ctx = llm.ChatContext.empty()
    for message in history:
        ctx.add_message(role="user" if message.role is MessageRole.CALLER else "assistant", content=message.text)
    return ctx


class PhoneAgent(Agent):
    def __init__(
        self,
        config: AgentConfig,
        control: CallControl,
        knowledge: KnowledgeBase,
        *,
        llm_: llm.LLM | None = None,
        history: Sequence[ContextMessage] = (),
        greet: bool = True,
        resume_line: str = "",
        resume_audio: tuple[rtc.AudioFrame, ...] = (),
    ) -> None:
        super().__init__(
            instructions=build_instructions(config),
            chat_ctx=history_context(history),
            llm=llm_ if llm_ is not None else NOT_GIVEN,
        )
        self.config = config
        self.control = control
        self.knowledge = knowledge
        self.greet = greet
        self.resume_line = resume_line
        self.resume_audio = resume_audio  # the line already synthesised in this agent's voice (voice.spoken_lines)
        self.consent: ConsentGate | None = None  # set by answer_call when the recording waits for consent

    async def on_enter(self) -> None:
        if self.consent is not None:  # the recording announcement (and consent) comes before the greeting
            await self.consent.run(self.session)
        if self.greet:
            self.session.say(default_greeting(self.config))
        elif self.resume_line:  # back on a call after its voice process died: pick up, don't start over
            audio = replay(self.resume_audio) if self.resume_audio else NOT_GIVEN
            self.session.say(self.resume_line, audio=audio)

    async def on_user_turn_completed(self, turn_ctx: llm.ChatContext, new_message: llm.ChatMessage) -> None:
        """The caller's answer to the consent question is for the consent gate, not for a reply."""
        if self.consent is not None and self.consent.heard(new_message.text_content or ""):
            raise StopResponse()

    # ----------------------------------------------------------------------------------- tools
    @function_tool
    async def transfer_call(self, context: RunContext, target: str = "", mode: str = "cold") -> ToolResult | str:
        """Transfer the caller to a person: use when the caller asks to speak to a person, a human, an agent,
        an operator or a representative, or accepts your offer to be transferred.

        Args:
            target: Where to transfer: a phone number in E.164 form ("+14155550100") or a SIP URI. Leave empty
                for this line's default destination (the front desk).
            mode: "cold" to hand the caller over and leave the call (default), or "warm" to dial the target into
                the call first.
        """
        await context.wait_for_playout()
        result = await self.control.transfer(target, mode)
        return _tool_result(result, silent_on_success=result.state is CallState.ENDED)

    @function_tool
    async def end_call(self, context: RunContext) -> ToolResult | str:
        """End (hang up) the call: use when the caller says goodbye, says that's all, or asks to hang up. Say a
        short goodbye before calling this."""
        await context.wait_for_playout()
        return _tool_result(await self.control.hang_up(), silent_on_success=True)

    @function_tool
    async def hold_call(self, context: RunContext) -> ToolResult | str:
        """Put the caller on hold: use when the caller asks to be put on hold or to hold on. Tell the caller
        before calling this; staff take the call off hold."""
        await context.wait_for_playout()
        return _tool_result(await self.control.hold(), silent_on_success=True)

    @function_tool
    async def send_dtmf(self, context: RunContext, digits: str) -> str:
        """Send touch-tone (DTMF) keys on the call, e.g. to navigate a phone menu: use when asked to press or
        dial keys.

        Args:
            digits: The keys to press, in order: 0-9, *, #, A-D, and "w" for a half-second pause (e.g. "123#").
        """
        return (await self.control.send_dtmf(digits)).for_llm()

    @function_tool
    async def pause_recording(self, context: RunContext) -> str:
        """Pause the call's recording: use before the caller says something secret (a card number, a password,
        a PIN) or when the caller asks not to be recorded for a moment. Resume afterwards with resume_recording."""
        return (await self.control.pause_recording()).for_llm()

    @function_tool
    async def resume_recording(self, context: RunContext) -> str:
        """Resume the call's recording after a pause (once the secret has been said)."""
        return (await self.control.resume_recording()).for_llm()

    @function_tool
    async def lookup_knowledge(self, context: RunContext, question: str) -> str:
        """Search this line's knowledge base (opening hours, prices, policies, directions, ...). Use before
        answering any factual question about the business.

        Args:
            question: The caller's question, in their words.
        """
        return format_results(self.knowledge.search(question, k=3))


def _tool_result(result: ActionResult, *, silent_on_success: bool) -> ToolResult | str:
    """A successful hang-up, hold or completed transfer needs no spoken follow-up (the caller is gone or on
    hold, and the line was said before the tool ran); anything else goes back to the LLM for a reply."""
    if result.ok and silent_on_success:
        return ToolResult(result.for_llm(), reply_required=False)
    return result.for_llm()


def mark_active_on_first_speech(session: AgentSession, control: CallControl) -> None:
    """Signal ACTIVE to the CallWorkflow the first time the agent speaks (once; later calls are no-ops)."""
    tasks: set[asyncio.Future[None]] = set()

    def on_state(event: AgentStateChangedEvent) -> None:
        if event.new_state != "speaking":
            return
        session.off("agent_state_changed", on_state)
        task = asyncio.ensure_future(_mark_active(control))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    session.on("agent_state_changed", on_state)


async def _mark_active(control: CallControl) -> None:
    try:
        await control.mark_active()
    except Exception:  # the conversation goes on; the workflow also learns of the call from the carrier
        log.exception("could not mark the call active")


@dataclass
class PreparedCall:
    """Everything an entrypoint needs for one call, built from the dispatch metadata."""

    dispatch: DispatchMetadata
    config: AgentConfig
    knowledge: KnowledgeBase
    llm: llm.LLM
    control: TemporalCallControl
    agent: PhoneAgent
    transcripts: DbTranscriptSink


async def _resume_audio(runtime: VoiceRuntime, config: AgentConfig, line: str) -> tuple[rtc.AudioFrame, ...]:
    if not line:
        return ()
    try:
        return await runtime.lines.audio(config.tts_provider, config.voice, line)
    except Exception:  # the session synthesises it then, as any other line
        log.exception("could not synthesise the re-attach line ahead")
        return ()


async def prepare_call(
    dispatch: DispatchMetadata,
    runtime: VoiceRuntime,
    *,
    agent_identity: str | None = None,
    transfer_target: str | None = None,
    history_limit: int = 20,
    resumed: bool = False,
    variables: dict[str, str] | None = None,
) -> PreparedCall:
    """Load the agent's config, knowledge base and the conversation's recent messages; wire the agent to the
    call's workflow (named in the dispatch). ``transfer_target``: the default destination of "speak to a
    person" (E.164 or SIP URI)."""
    sessions = runtime.sessions
    config = await load_agent_config(
        sessions, dispatch.space_id, dispatch.agent_id, runtime.secret_box, transfer_target=transfer_target
    )
    config = with_flow_variables(config, variables or {})  # what a flow gathered before handing the call over
    knowledge = KnowledgeBase(config.knowledge)
    model = build_llm(config, knowledge)
    history = (
        await recent_messages(sessions, dispatch.conversation_id, history_limit) if dispatch.conversation_id else []
    )
    control = TemporalCallControl(
        runtime.calls.trusted(dispatch.workflow_id),
        agent_identity=agent_identity,
        default_transfer_target=config.transfer_target,
    )
    resume_line = runtime.settings.reattach_line if resumed else ""
    resume_audio = await _resume_audio(runtime, config, resume_line)
    agent = PhoneAgent(
        config,
        control,
        knowledge,
        llm_=model,
        history=history,
        greet=not resumed,
        resume_line=resume_line,
        resume_audio=resume_audio,
    )
    sink = DbTranscriptSink(
        sessions, space_id=dispatch.space_id, conversation_id=dispatch.conversation_id, call_id=dispatch.call_id
    )
    return PreparedCall(dispatch, config, knowledge, model, control, agent, sink)
