"""A flow's prompt that reaches the media process before the stream's attach has been answered waits for the
stream's flow (the workflow schedules the first prompt in the task that answers the attach: seen in CI, where the
prompt then failed with StreamNotHere and the caller heard nothing); a stream this process does not carry is
refused at once."""

from __future__ import annotations

import asyncio
import time

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.flow_media import FlowMediaActivities, FlowStream
from activities.media_streams import STREAM_NOT_HERE
from models.flow_calls import PlayPrompt, PromptPlayed, RecordVoicemail, StartFlowAgent, VoicemailRecorded


class SaidFlow:
    """The stream's side of a flow (``FlowStream``): what the media process says, as it would report it."""

    def __init__(self) -> None:
        self.said: list[str] = []

    async def play_prompt(self, request: PlayPrompt) -> PromptPlayed:
        self.said.append(request.text)
        return PromptPlayed(interrupted=False, seconds=1.0)

    async def start_agent(self, request: StartFlowAgent) -> None:
        raise NotImplementedError

    async def record_voicemail(self, request: RecordVoicemail) -> VoicemailRecorded:
        raise NotImplementedError


def prompt(stream_id: str) -> PlayPrompt:
    return PlayPrompt(stream_id=stream_id, call_id="call_1", text="Press 1 for sales.")


async def test_a_prompt_before_the_attach_answer_waits_for_the_flow() -> None:
    flows: dict[str, FlowStream] = {}
    attaching = {"MZ1"}
    activities = FlowMediaActivities(flows, attaching=lambda sid: sid in attaching)
    flow = SaidFlow()

    async def attach_answered() -> None:
        await asyncio.sleep(0.3)
        flows["MZ1"] = flow

    answered = asyncio.create_task(attach_answered())
    played = await ActivityEnvironment().run(activities.play_prompt, prompt("MZ1"))
    await answered
    assert played == PromptPlayed(interrupted=False, seconds=1.0)
    assert flow.said == ["Press 1 for sales."]


@pytest.mark.parametrize("carried", [False, True], ids=["not-carried", "carried-without-flow"])
async def test_a_stream_without_a_flow_here_is_refused(carried: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("activities.flow_media.FLOW_ATTACH_WAIT", 0.5)
    activities = FlowMediaActivities({}, attaching=lambda _: carried)
    started = time.monotonic()
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(activities.play_prompt, prompt("MZ2"))
    assert refused.value.type == STREAM_NOT_HERE and refused.value.non_retryable
    waited = time.monotonic() - started
    assert waited >= 0.5 if carried else waited < 0.3  # an agent's stream (never a flow) gives up after the wait
