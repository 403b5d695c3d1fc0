"""Inputs and outputs of the activities a call runs for its flow: loading the flow's version at call start (on
the worker), and the prompts and the agent hand-off on the media process carrying the call's audio."""

from __future__ import annotations

from dataclasses import dataclass, field

FLOW_NOT_FOUND = "FlowNotFound"


@dataclass
class LoadFlowInput:
    space_id: str
    flow_id: str


@dataclass
class LoadedFlow:
    """The flow's current version when the call started: the call runs this one to its end."""

    flow_id: str
    version: int
    document_json: str  # the document as stored (JSON): a version is read once, parsed by the workflow


@dataclass
class PlayPrompt:
    stream_id: str
    call_id: str
    text: str
    tts_provider: str = "local-hibari"
    voice: str = "heart"
    interruptible: bool = False  # a key pressed while it plays cuts it off (a gather's prompt)
    asset_id: str | None = None  # play this audio asset of the space instead of saying ``text``
    space_id: str | None = None  # the call's space (an asset is looked up in it only)


@dataclass
class PromptPlayed:
    interrupted: bool  # cut off by a key (or the stream ended) before it finished
    seconds: float = 0.0  # audio sent


@dataclass
class StartFlowAgent:
    stream_id: str
    call_id: str
    agent_id: str
    variables: dict[str, str] = field(default_factory=dict)  # gathered by the flow: into the agent's context


@dataclass
class FlowAgentStarted:
    agent_id: str


@dataclass
class FlowWebhookRequest:
    url: str
    timeout_seconds: float
    call_id: str
    flow_id: str
    step_id: str
    caller: str
    variables: dict[str, str] = field(default_factory=dict)


@dataclass
class FlowWebhookAnswer:
    """The endpoint's JSON object (as text), or why there is none (timeout, HTTP error, not a JSON object)."""

    answer_json: str | None = None
    error: str | None = None
    status_code: int | None = None


@dataclass
class RecordVoicemail:
    stream_id: str
    call_id: str
    prompt: str | None = None
    tts_provider: str = "local-hibari"
    voice: str = "heart"
    max_seconds: int = 120
    finish_key: str | None = "#"
    silence_seconds: float = 3.0  # after speech, this much silence ends the message
    no_speech_seconds: float = 10.0  # nothing said this long after the tone: no message


@dataclass
class VoicemailRecorded:
    path: str  # on the media process that recorded it: stored as the space's asset from there
    seconds: float
    ended_by: str  # "silence", "key", "max", "no-speech" or "hangup"
    speech: bool  # the caller said something (else there is nothing to store)
