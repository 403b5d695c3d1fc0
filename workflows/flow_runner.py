"""Runs a call's flow inside its ``CallWorkflow``: deterministic workflow code over the pure decisions of
``workflows/flow_steps.py``. Prompts and the agent hand-off are activities on the media process carrying the
call's audio (its own task queue, like ``carry_media``); keys arrive as the call's ``dtmf_received`` signal; each
step taken, with its input and where it went, is a ``flow_step`` entry on the call's timeline.

The flow's version is read once, when the call is routed, and kept in the workflow: edits made meanwhile reach
only later calls. After a worker restart the workflow replays to the step it was in and waits there again; if
the media process dies, the prompt in flight is said again on the stream the call moves to."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, Protocol, assert_never

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    import models.calls as c
    import workflows.call_recording as call_recording
    import workflows.flow_steps as fs
    from activities.flow_media import FlowMediaActivities
    from activities.flows import FlowActivities
    from activities.recording_assets import RecordingAssetActivities
    from models.assets import StoreRecordingInput
    from models.enums import CallState, EndReason
    from models.flow_calls import (
        FlowWebhookRequest,
        LoadedFlow,
        LoadFlowInput,
        PlayPrompt,
        PromptPlayed,
        RecordVoicemail,
        StartFlowAgent,
    )
    from models.flows import (
        AgentStep,
        Branch,
        FlowDocument,
        Gather,
        Hangup,
        Say,
        SetStep,
        Step,
        Transfer,
        Voicemail,
        Webhook,
    )
    from workflows.call_leg import LegHost, run_db
    from workflows.failures import ActivityFailure, failure_reason
    from workflows.flow_webhook import call_webhook

S = CallState
ONCE = RetryPolicy(maximum_attempts=1)  # a prompt lives on one stream: on failure the runner finds the new one
PROMPT_TIMEOUT = timedelta(minutes=5)
MEDIA_WAIT = timedelta(seconds=c.MEDIA_REATTACH_WAIT_SECONDS + 10)  # for a stream to (re-)attach
MAX_STEPS = 1_000  # a caller pressing keys forever still ends: the call's max duration ends it sooner anyway
PROMPT_ATTEMPTS = 3


class FlowHost(LegHost, Protocol):
    def media_stream(self) -> c.AttachMedia | None:
        """The stream carrying the call's audio now (None: none attached yet)."""

    @property
    def transfer(self) -> Any:
        """The workflow's transfer update, called as a method: async (c.TransferRequest) -> c.TransferResult
        (typed loosely: mypy sees an update method as unbound on the class)."""


async def load(space_id: str, flow_id: str) -> LoadedFlow | str:
    """The flow's current version, or why it cannot run."""
    try:
        return await run_db(FlowActivities.load_flow, LoadFlowInput(space_id, flow_id))
    except ActivityFailure as exc:
        return failure_reason(exc)


class FlowRunner:
    def __init__(self, host: FlowHost, loaded: LoadedFlow, variables: dict[str, str]) -> None:
        self.host = host
        self.loaded = loaded
        self.document = FlowDocument.model_validate_json(loaded.document_json)
        self.variables = dict(variables)
        self.step_id: str | None = None
        self.handed_off = False  # the agent answers the caller from now on
        self.speech: list[str] = []  # utterances heard while in the flow (speech_received)
        self._speech_ids: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def heard(self, event: c.SpeechEvent) -> None:
        if event.event_id is not None:
            if event.event_id in self._speech_ids:
                return
            self._speech_ids.add(event.event_id)
        if event.text.strip():
            self.speech.append(event.text.strip())

    def start(self) -> None:
        self._task = asyncio.create_task(self.run())

    # ---------------------------------------------------------------------------------- the loop
    async def run(self) -> None:
        k = self.host.k
        k.note("flow_started", workflow.now(), f"{self.loaded.flow_id} v{self.loaded.version}")
        if await self._stream() is None:
            self.host.end(EndReason.FAILED, "flow_failed", "no media stream to play the flow on")
            return
        self.host.transition(S.ACTIVE, "flow_active")
        step_id: str | None = self.document.first
        for _ in range(MAX_STEPS):
            if step_id is None or k.state is S.ENDED:
                break
            self.step_id = step_id
            step = self.document.step(step_id)
            move = await self._execute(step)
            if move is None:
                return
            self.variables.update(move.variables)
            k.note("flow_step", workflow.now(), f"{fs.describe(step)}: {move.detail}")
            if k.state is S.ENDED:  # the caller hung up during the step
                return
            step_id = move.next
        else:
            self.host.end(EndReason.FAILED, "flow_failed", f"over {MAX_STEPS} steps")
            return
        self.host.end(EndReason.COMPLETED, "flow_ended", self.step_id)

    def _context(self) -> fs.FlowContext:
        k = self.host.k
        caller = k.start.from_number if k.start.direction.value == "inbound" else k.start.to_number
        return fs.FlowContext(workflow.now(), caller, self.variables)

    async def _execute(self, step: Step) -> fs.Move | None:
        """Perform one step; the move to the next, or None when the flow is over (hung up, handed off)."""
        doc = self.document
        if isinstance(step, Say):
            text = fs.fill(step.text, self.variables) if step.text is not None else ""
            played = await self._say(text, interruptible=False, asset_id=step.asset_id)
            return None if played is None else fs.Move(doc.default_next(step), f"said -> {doc.default_next(step)}")
        if isinstance(step, Gather):
            return await self._gather(step)
        if isinstance(step, Branch):
            return fs.branch(doc, step, self._context())
        if isinstance(step, SetStep):
            return fs.set_values(doc, step, self._context())
        if isinstance(step, AgentStep):
            await self._hand_off(step)
            return None
        if isinstance(step, Transfer):
            return await self._transfer(step)
        if isinstance(step, Webhook):
            return await self._webhook(step)
        if isinstance(step, Voicemail):
            return await self._voicemail(step)
        if isinstance(step, Hangup):
            self.host.k.note("flow_step", workflow.now(), f"{fs.describe(step)}: hang up")
            self.host.end(EndReason.COMPLETED, "flow_hangup", step.id)
            return None
        assert_never(step)

    # ------------------------------------------------------------------------------------- steps
    async def _gather(self, step: Gather) -> fs.Move | None:
        k = self.host.k
        for attempt in range(step.retries + 1):
            mark, said = len(k.dtmf), len(self.speech)  # input from the prompt on counts (a key cuts it off)
            if await self._say(fs.fill(step.prompt, self.variables), interruptible=True) is None:
                return None
            keys = fs.read_keys(step, k.dtmf[mark:])
            spoken = step.speech and len(self.speech) > said
            while not keys.complete and not spoken:
                seen, heard = len(k.dtmf), len(self.speech)
                try:
                    await workflow.wait_condition(
                        lambda: len(k.dtmf) != seen or len(self.speech) != heard or k.state is S.ENDED,  # noqa: B023
                        timeout=timedelta(seconds=step.timeout_seconds),
                    )
                except TimeoutError:
                    break
                if k.state is S.ENDED:
                    return None
                keys = fs.read_keys(step, k.dtmf[mark:])
                spoken = step.speech and len(self.speech) > said
            value = keys.value
            if not value and spoken:
                value = fs.read_speech(step, self.speech[said])
            outcome = fs.gather_outcome(self.document, step, value, attempt)
            if outcome.move is not None:
                move = outcome.move
                return fs.Move(move.next, f"{outcome.kind} {value!r}, {move.detail}", move.variables)
            k.note("flow_step", workflow.now(), f"{fs.describe(step)}: {outcome.kind} {value!r}, retry")
            if outcome.retry_prompt and await self._say(outcome.retry_prompt, interruptible=True) is None:
                return None
        raise AssertionError("gather_outcome moves on once the retries are spent")

    async def _hand_off(self, step: AgentStep) -> None:
        k = self.host.k
        previous, k.agent_id = k.agent_id, step.agent_id  # a stream attaching from now on gets the agent
        stream = await self._stream()
        if stream is None:
            return
        request = StartFlowAgent(stream.stream_id, k.start.call_id, step.agent_id, dict(self.variables))
        try:
            await workflow.execute_activity_method(
                FlowMediaActivities.start_agent,
                request,
                task_queue=stream.task_queue,
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=ONCE,
            )
        except ActivityError as exc:
            k.agent_id = previous
            self.host.end(EndReason.FAILED, "flow_failed", f"{step.id}: {failure_reason(exc)}")
            return
        self.handed_off = True
        names = ", ".join(sorted(self.variables)) or "no variables"
        k.note("flow_step", workflow.now(), f"{fs.describe(step)}: handed to agent {step.agent_id} with {names}")

    async def _transfer(self, step: Transfer) -> fs.Move | None:
        request = c.TransferRequest(fs.fill(step.target, self.variables), c.TransferMode(step.mode), by="flow")
        try:
            result: c.TransferResult = await self.host.transfer(request)
            ok, error = result.ok, result.error
        except ApplicationError as exc:  # refused in this call's state or on this transport
            ok, error = False, exc.message
        if ok and self.host.k.state is S.ENDED:
            self.host.k.note("flow_step", workflow.now(), f"{fs.describe(step)}: transferred")
            return None
        target = step.on_failure or self.document.default_next(step)
        if ok:
            return fs.Move(self.document.default_next(step), "transfer connected")
        return fs.Move(target, f"transfer failed ({error}) -> {target or 'end'}")

    async def _webhook(self, step: Webhook) -> fs.Move:
        ctx = self._context()
        request = FlowWebhookRequest(
            str(step.url),
            step.timeout_seconds,
            self.host.k.start.call_id,
            self.loaded.flow_id,
            step.id,
            ctx.caller,
            dict(self.variables),
        )
        return await call_webhook(self.document, step, ctx, request)

    async def _voicemail(self, step: Voicemail) -> fs.Move | None:
        """Record the caller's message on the stream's process, store it there as the space's asset, and have it
        transcribed into the conversation. A caller who hangs up after speaking still leaves the message."""
        k, voice = self.host.k, self.document.voice
        stream = await self._stream()
        if stream is None:
            return None
        prompt = fs.fill(step.prompt, self.variables) if step.prompt else None
        request = RecordVoicemail(
            stream.stream_id,
            k.start.call_id,
            prompt,
            voice.tts_provider,
            voice.voice,
            step.max_seconds,
            step.finish_key,
        )
        following = self.document.default_next(step)
        try:
            recorded = await workflow.execute_activity_method(
                FlowMediaActivities.record_voicemail,
                request,
                task_queue=stream.task_queue,
                start_to_close_timeout=timedelta(seconds=step.max_seconds + 120),
                heartbeat_timeout=timedelta(seconds=c.MEDIA_HEARTBEAT_TIMEOUT_SECONDS),
                retry_policy=ONCE,
            )
        except ActivityError as exc:
            return fs.Move(following, f"not recorded ({failure_reason(exc)}) -> {following or 'end'}")
        if not recorded.speech:
            return fs.Move(following, f"no message ({recorded.ended_by}) -> {following or 'end'}")
        assert k.space_id is not None
        store = StoreRecordingInput(
            k.space_id,
            k.start.call_id,
            recorded.path,
            k.conversation_id,
            duration_seconds=recorded.seconds,
            name=f"voicemail-{step.id}",
        )
        try:
            stored = await workflow.execute_activity_method(
                RecordingAssetActivities.store_recording,
                store,
                task_queue=stream.task_queue,  # the file is on that process's disk
                schedule_to_start_timeout=call_recording.ON_ITS_PROCESS,
                start_to_close_timeout=timedelta(minutes=5),
                retry_policy=call_recording.STORE_RETRY,
            )
        except ActivityError as exc:
            return fs.Move(following, f"recorded, not stored ({failure_reason(exc)}) -> {following or 'end'}")
        k.note("voicemail_stored", workflow.now(), stored.asset_id)
        await call_recording.transcribe(k, stored.asset_id)
        detail = f"{recorded.seconds:.1f} s ({recorded.ended_by}), asset {stored.asset_id} -> {following or 'end'}"
        return fs.Move(following, detail)

    async def finished(self) -> None:
        """The call ended: let a step still finishing its work (a voicemail being stored) finish it."""
        if self._task is not None:
            await self._task

    # ------------------------------------------------------------------------------------- media
    async def _stream(self) -> c.AttachMedia | None:
        host, k = self.host, self.host.k
        try:
            await workflow.wait_condition(
                lambda: host.media_stream() is not None or k.state is S.ENDED, timeout=MEDIA_WAIT
            )
        except TimeoutError:
            return None
        return host.media_stream() if k.state is not S.ENDED else None

    async def _say(self, text: str, *, interruptible: bool, asset_id: str | None = None) -> PromptPlayed | None:
        """Say ``text`` on the call's stream; None when the call ended or no stream could play it. A stream lost
        mid-prompt (its process died) has the prompt said again on the stream the call moves to."""
        host, k, voice = self.host, self.host.k, self.document.voice
        for _ in range(PROMPT_ATTEMPTS):
            stream = await self._stream()
            if stream is None:
                return None
            request = PlayPrompt(
                stream.stream_id, k.start.call_id, text, voice.tts_provider, voice.voice, interruptible
            )
            if asset_id is not None:
                request.asset_id, request.space_id = asset_id, k.space_id
            try:
                return await workflow.execute_activity_method(
                    FlowMediaActivities.play_prompt,
                    request,
                    task_queue=stream.task_queue,
                    start_to_close_timeout=PROMPT_TIMEOUT,
                    heartbeat_timeout=timedelta(seconds=c.MEDIA_HEARTBEAT_TIMEOUT_SECONDS),
                    retry_policy=ONCE,
                )
            except ActivityError as exc:
                if k.state is S.ENDED:
                    return None
                k.note("flow_prompt_lost", workflow.now(), failure_reason(exc))
                try:
                    await workflow.wait_condition(
                        lambda: host.media_stream() is not stream or k.state is S.ENDED,  # noqa: B023
                        timeout=MEDIA_WAIT,
                    )
                except TimeoutError:
                    break
        if k.state is not S.ENDED:
            host.end(EndReason.FAILED, "flow_failed", "the prompt could not be played")
        return None
