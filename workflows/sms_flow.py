"""A number's flow on its SMS threads: the same document and the same pure decisions (``workflows/flow_steps.py``)
as on a call, with texts for audio. Runs inside ``SmsThreadWorkflow``, one inbound message at a time.

- ``say`` sends its text as a reply; ``gather`` sends its prompt and waits for the next inbound message, which
  is the input: keypad characters are read as keys (max digits, terminator), anything else as words (matched
  against ``speech_choices``, else the words themselves); a no-match is retried with its prompt as on a call.
  The gather waits for its reply ``reply_timeout_seconds`` (1 hour by default, as Twilio Studio's Send & Wait For
  Reply), however short the thread's idle window: the thread stays open while it waits (``SmsThreadWorkflow``).
  Past it, that is a no-input, as on a call: the no-input prompt and the prompt again up to ``retries``, then
  ``on_no_input`` (default: the next step).
- ``branch``, ``set`` and ``webhook`` work as on a call (the webhook through the same activity).
- ``agent`` hands the thread to that agent: it answers the message that handed over and every later one, with
  the flow's variables in its context.
- ``hangup`` (or the last step) ends the flow; the party's next message starts it again at its current version.
- ``transfer`` and ``voicemail`` need a voice line: on SMS they are skipped with a note (``transfer`` takes its
  ``on_failure`` branch), never refused at validation, since the same flow also answers the number's calls.

Each step taken, with its input and where it went, is noted in the thread's ``flow_steps`` (its state query)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import models.sms as m
    import workflows.flow_steps as fs
    from models.flow_calls import FlowWebhookRequest
    from models.flows import AgentStep, Branch, FlowDocument, Gather, Hangup, Say, SetStep, Transfer, Voicemail, Webhook
    from workflows.flow_webhook import call_webhook

MAX_STEPS = 200  # per inbound message: a flow looping without a gather still stops
KEEP_STEPS = 50  # notes the thread keeps (its state view)
KEYS = set("0123456789*#")

Reply = Callable[[str], Awaitable[object]]


def sms_input(step: Gather, body: str) -> str:
    """What a text message stands for as a gather's input."""
    text = body.strip()
    if text and set(text) <= KEYS:
        return fs.read_keys(step, text).value
    return fs.read_speech(step, text)


class SmsFlow:
    def __init__(self, state: m.SmsFlowState, notes: list[str], thread_id: str, party: str) -> None:
        self.state = state
        self.document = FlowDocument.model_validate_json(state.document_json)
        self._notes = notes  # the thread's flow_steps, appended to in place
        self._thread_id = thread_id
        self._party = party

    @property
    def over(self) -> bool:
        """Ended (hang-up or last step) without handing the thread to an agent."""
        return self.state.waiting_at is None and self.state.agent_id is None

    @staticmethod
    def noted(notes: list[str], text: str) -> None:
        notes.append(text)
        del notes[:-KEEP_STEPS]

    def note(self, text: str) -> None:
        self.noted(self._notes, text)

    async def message(self, body: str, reply: Reply) -> None:
        """An inbound message: the answer to the gather waiting for one, or (none waiting) the flow's start."""
        state, doc = self.state, self.document
        if state.waiting_at is None:
            self.note(f"flow {state.flow_id} v{state.version} started")
            await self._run(doc.first, reply)
            return
        step = self._waiting()
        await self._answered(step, sms_input(step, body), reply)

    async def no_reply(self, reply: Reply) -> None:
        """The gather's reply timeout passed without a message: a no-input."""
        await self._answered(self._waiting(), "", reply)

    def _waiting(self) -> Gather:
        assert self.state.waiting_at is not None
        step = self.document.step(self.state.waiting_at)
        assert isinstance(step, Gather)
        return step

    def _ask(self, step: Gather, attempt: int) -> None:
        self.state.waiting_at, self.state.attempt = step.id, attempt
        self.state.reply_by = workflow.now() + timedelta(seconds=step.reply_timeout_seconds)

    async def _answered(self, step: Gather, value: str, reply: Reply) -> None:
        state = self.state
        outcome = fs.gather_outcome(self.document, step, value, state.attempt)
        if outcome.move is None:
            self.note(f"{fs.describe(step)}: {outcome.kind} {value!r}, retry")
            if outcome.retry_prompt:
                await reply(outcome.retry_prompt)
            await reply(fs.fill(step.prompt, state.variables))
            self._ask(step, state.attempt + 1)
            return
        move = outcome.move
        state.variables.update(move.variables)
        state.waiting_at, state.attempt, state.reply_by = None, 0, None
        self.note(f"{fs.describe(step)}: {outcome.kind} {value!r}, {move.detail}")
        await self._run(move.next, reply)

    async def _run(self, step_id: str | None, reply: Reply) -> None:
        state, doc = self.state, self.document
        for _ in range(MAX_STEPS):
            if step_id is None:
                self.note("flow ended")
                return
            step = doc.step(step_id)
            if isinstance(step, Gather):
                await reply(fs.fill(step.prompt, state.variables))
                self._ask(step, 0)
                self.note(f"{fs.describe(step)}: asked")
                return
            if isinstance(step, AgentStep):
                state.agent_id = step.agent_id
                names = ", ".join(sorted(state.variables)) or "no variables"
                self.note(f"{fs.describe(step)}: handed to agent {step.agent_id} with {names}")
                return
            if isinstance(step, Hangup):
                self.note(f"{fs.describe(step)}: flow ended")
                return
            move = await self._step(step, reply)
            state.variables.update(move.variables)
            self.note(f"{fs.describe(step)}: {move.detail}")
            step_id = move.next
        self.note(f"flow stopped: over {MAX_STEPS} steps for one message")

    async def _step(self, step: Say | Branch | SetStep | Webhook | Transfer | Voicemail, reply: Reply) -> fs.Move:
        doc, ctx = self.document, fs.FlowContext(workflow.now(), self._party, self.state.variables)
        following = doc.default_next(step)
        if isinstance(step, Say):
            if step.text is None:
                return fs.Move(following, f"audio, skipped on SMS -> {following or 'end'}")
            await reply(fs.fill(step.text, self.state.variables))
            return fs.Move(following, f"sent -> {following or 'end'}")
        if isinstance(step, Branch):
            return fs.branch(doc, step, ctx)
        if isinstance(step, SetStep):
            return fs.set_values(doc, step, ctx)
        if isinstance(step, Webhook):
            return await self._webhook(step, ctx)
        if isinstance(step, Transfer):
            target = step.on_failure or following
            return fs.Move(target, f"voice only, skipped on SMS -> {target or 'end'}")
        return fs.Move(following, f"voice only, skipped on SMS -> {following or 'end'}")

    async def _webhook(self, step: Webhook, ctx: fs.FlowContext) -> fs.Move:
        request = FlowWebhookRequest(
            str(step.url),
            step.timeout_seconds,
            self._thread_id,
            self.state.flow_id,
            step.id,
            ctx.caller,
            dict(self.state.variables),
        )
        return await call_webhook(self.document, step, ctx, request)
