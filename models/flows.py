"""A flow: a small declarative call script (menu, business hours, voicemail) a number can route to.

The document is a list of steps, one pydantic model per step type (a discriminated union on ``type``). The
first step (or ``start``) runs first; a step without ``next`` goes on to the step after it in the list, and
running off the end hangs up. The graph rules (every target exists, every step reachable, no loop without a
``gather`` in it, a transfer has a target) are checked here, once, and every error names its step.

Pure: no I/O, importable inside workflows (the interpreter in ``workflows/flow_steps.py`` runs these models).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import time
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl, model_validator

STEP_TYPES = ("say", "gather", "branch", "agent", "transfer", "voicemail", "set", "webhook", "hangup")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_STEP_ID = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"
_VARIABLE = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
_SPAN = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-4]):([0-5][0-9])")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]{0,63})\}")

StepId = Annotated[str, Field(pattern=_STEP_ID, description="Unique within the flow")]
Variable = Annotated[str, Field(pattern=_VARIABLE)]
Text = Annotated[str, Field(min_length=1, max_length=2_000)]


class FlowProblem(ValueError):
    """A flow document that cannot run; the message names the step."""


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as 'America/New_York')") from None
    return name


def _span(value: str) -> str:
    match = _SPAN.fullmatch(value)
    if match is None:
        raise ValueError(f"{value!r} is not a span like '09:00-17:30'")
    start, end = value.split("-")
    if (end != "24:00" and end <= start) or (end == "24:00" and match.group(4) != "00"):
        raise ValueError(f"{value!r}: a span ends after it starts (use two spans across midnight)")
    return value


def _https_or_loopback(url: HttpUrl) -> HttpUrl:
    """Variables (and the caller's number) leave over TLS; plain HTTP only to this machine (development)."""
    if url.scheme != "https" and url.host not in ("127.0.0.1", "localhost", "::1", "[::1]"):
        raise ValueError("a webhook URL must be https:// (http:// only to 127.0.0.1 or localhost)")
    return url


Zone = Annotated[str, AfterValidator(_zone)]
Span = Annotated[str, AfterValidator(_span)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class Condition(_Model):
    """Holds when every field given holds (an empty condition always holds)."""

    variable: Variable | None = Field(default=None, description="Compare this variable (gathered input, set, webhook)")
    equals: str | None = Field(default=None, max_length=200)
    one_of: list[str] | None = Field(default=None, max_length=100)
    caller_starts_with: str | None = Field(default=None, max_length=20, description="E.164 prefix of the caller")
    business_hours: bool | None = Field(default=None, description="true: open now; false: closed now")

    @model_validator(mode="after")
    def _compares_something(self) -> Self:
        if (self.equals is not None or self.one_of is not None) and self.variable is None:
            raise ValueError("equals/one_of compare a variable: name it")
        return self


class Route(_Model):
    when: Condition
    goto: StepId


class _Step(_Model):
    id: StepId
    next: StepId | None = Field(default=None, description="Default: the next step in the list")


class Say(_Step):
    """Say ``text`` with the flow's voice, or play ``asset_id``: an audio asset (WAV) of the flow's space, checked
    when the flow is saved. On SMS the text is the reply; an audio ``say`` is skipped there."""

    type: Literal["say"]
    text: Text | None = None
    asset_id: str | None = Field(default=None, min_length=1, max_length=40)

    @model_validator(mode="after")
    def _text_or_audio(self) -> Self:
        if (self.text is None) == (self.asset_id is None):
            raise FlowProblem(f"step {self.id!r}: a say has either text or an asset_id")
        return self


class Gather(_Step):
    """Collect DTMF digits (and, with ``speech``, an utterance) into ``variable``; a key cuts the prompt off.
    Speech is matched against ``speech_choices`` ("sales" -> "1"); unmatched, the words themselves are the input."""

    type: Literal["gather"]
    prompt: Text
    variable: Variable = "input"
    max_digits: int = Field(default=1, ge=1, le=32)
    timeout_seconds: float = Field(default=5.0, ge=0.5, le=60)
    terminator: Literal["#", "*"] | None = "#"
    speech: bool = Field(default=False, description="Also listen: what the caller says is the input")
    speech_choices: dict[Annotated[str, Field(min_length=1, max_length=100)], str] = Field(
        default_factory=dict, max_length=100, description="A word or phrase heard -> the input it stands for"
    )
    choices: list[Annotated[str, Field(max_length=200)]] | None = Field(
        default=None, max_length=100, description="Accepted inputs; anything else is a no-match (retried)"
    )
    retries: int = Field(default=2, ge=0, le=10)
    no_input_prompt: Text | None = None
    no_match_prompt: Text | None = None
    on_no_input: StepId | None = Field(default=None, description="After the retries without input (default: next)")
    on_no_match: StepId | None = Field(default=None, description="After the retries with no match (default: next)")
    reply_timeout_seconds: int = Field(
        default=3600,
        ge=60,
        le=7 * 86_400,
        description="On SMS: how long the prompt waits for the reply (as Studio's Send & Wait For Reply), whatever "
        "the thread's idle window; then it counts as no input",
    )


class Branch(_Step):
    type: Literal["branch"]
    routes: list[Route] = Field(min_length=1, max_length=100)
    default: StepId | None = Field(default=None, description="When no route holds (default: next)")


class AgentStep(_Step):
    """Hand the call to an agent; the flow's variables go into its context. The flow ends here."""

    type: Literal["agent"]
    agent_id: str = Field(min_length=1, max_length=40)


class Transfer(_Step):
    type: Literal["transfer"]
    target: str = Field(min_length=3, max_length=300, description="E.164 number or SIP URI")
    mode: Literal["cold", "warm"] = "cold"
    on_failure: StepId | None = None


class Voicemail(_Step):
    type: Literal["voicemail"]
    prompt: Text | None = None
    max_seconds: int = Field(default=120, ge=5, le=600)
    finish_key: Literal["#", "*"] | None = "#"


class SetStep(_Step):
    """Set variables; ``{name}`` in a value is replaced by that variable's value."""

    type: Literal["set"]
    values: dict[Variable, Annotated[str, Field(max_length=500)]] = Field(min_length=1, max_length=50)


class Webhook(_Step):
    """POST the variables to the space's HTTPS endpoint; string fields of its JSON answer become variables
    (prefixed), then ``routes`` branch on them."""

    type: Literal["webhook"]
    url: Annotated[HttpUrl, AfterValidator(_https_or_loopback)]
    timeout_seconds: float = Field(default=5.0, ge=0.5, le=30)
    prefix: Variable = "webhook_"
    routes: list[Route] = Field(default_factory=list, max_length=100)
    on_failure: StepId | None = None


class Hangup(_Model):
    type: Literal["hangup"]
    id: StepId


Step = Annotated[
    Say | Gather | Branch | AgentStep | Transfer | Voicemail | SetStep | Webhook | Hangup, Field(discriminator="type")
]
TERMINAL = (AgentStep, Hangup)  # no step follows them


class Voice(_Model):
    tts_provider: Literal["local-hibari", "local-espeak", "cartesia", "openai"] = "local-hibari"
    voice: str = Field(default="heart", min_length=1, max_length=64)


class FlowDocument(_Model):
    name: str = Field(min_length=1, max_length=200)
    start: StepId | None = Field(default=None, description="Default: the first step")
    time_zone: Zone = "UTC"
    business_hours: dict[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], list[Span]] = Field(
        default_factory=dict, description="Open spans per day in the flow's time zone, e.g. mon: ['09:00-17:00']"
    )
    voice: Voice = Field(default_factory=Voice)
    steps: list[Step] = Field(min_length=1, max_length=500)

    @model_validator(mode="before")
    @classmethod
    def _step_shapes(cls, data: Any) -> Any:
        """Errors pydantic would report by list index, said by step name: unknown type, transfer target."""
        if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
            return data
        for index, raw in enumerate(data["steps"]):
            if not isinstance(raw, dict):
                raise FlowProblem(f"step {index + 1}: a step is a mapping with an id and a type")
            name = raw.get("id") if isinstance(raw.get("id"), str) else f"#{index + 1}"
            kind = raw.get("type")
            if kind not in STEP_TYPES:
                raise FlowProblem(f"step {name!r}: unknown step type {kind!r} (one of {', '.join(STEP_TYPES)})")
            if kind == "transfer" and not (isinstance(raw.get("target"), str) and raw["target"].strip()):
                raise FlowProblem(f"step {name!r}: a transfer needs a target (E.164 number or SIP URI)")
        return data

    @model_validator(mode="after")
    def _graph(self) -> Self:
        check_graph(self)
        return self

    def audio_assets(self) -> dict[str, str]:
        """Step id -> the audio asset it plays (checked against the space when the flow is saved)."""
        return {s.id: s.asset_id for s in self.steps if isinstance(s, Say) and s.asset_id}

    # ----------------------------------------------------------------------------- navigation
    def step(self, step_id: str) -> Step:
        return self.by_id()[step_id]

    def by_id(self) -> dict[str, Step]:
        return {s.id: s for s in self.steps}

    @property
    def first(self) -> str:
        return self.start or self.steps[0].id

    def following(self, step_id: str) -> str | None:
        """The step after ``step_id`` in the list (None: the end, which hangs up)."""
        ids = [s.id for s in self.steps]
        index = ids.index(step_id)
        return ids[index + 1] if index + 1 < len(ids) else None

    def default_next(self, step: Step) -> str | None:
        if isinstance(step, TERMINAL):
            return None
        return step.next or self.following(step.id)

    def is_open(self, local_day: int, local_time: time) -> bool:
        """Business hours: ``local_day`` 0 = Monday, ``local_time`` in the flow's zone."""
        for span in self.business_hours.get(DAYS[local_day], []):  # type: ignore[call-overload]
            start, end = span.split("-")
            begin = time.fromisoformat(start)
            if local_time >= begin and (end == "24:00" or local_time < time.fromisoformat(end)):
                return True
        return False


def targets(document: FlowDocument, step: Step) -> Iterator[tuple[str, str]]:
    """(field, step id) for every step ``step`` may go to next."""
    if not isinstance(step, TERMINAL):
        following = document.default_next(step)
        if following is not None:
            yield "next", following
    if isinstance(step, Gather):
        for name in ("on_no_input", "on_no_match"):
            if (target := getattr(step, name)) is not None:
                yield name, target
    if isinstance(step, Branch | Webhook):
        for route in step.routes:
            yield "routes.goto", route.goto
    if isinstance(step, Branch) and step.default is not None:
        yield "default", step.default
    if isinstance(step, Transfer | Webhook) and step.on_failure is not None:
        yield "on_failure", step.on_failure


def check_graph(document: FlowDocument) -> None:
    """Raise :class:`FlowProblem` naming the step: duplicate ids, a target that is no step, a step no path
    reaches, a loop a caller could never leave (no ``gather`` in it)."""
    ids: dict[str, Step] = {}
    for step in document.steps:
        if step.id in ids:
            raise FlowProblem(f"step {step.id!r}: the id is used twice")
        ids[step.id] = step
    if document.start is not None and document.start not in ids:
        raise FlowProblem(f"start: there is no step {document.start!r}")
    edges: dict[str, list[str]] = {}
    for step in document.steps:
        edges[step.id] = []
        for field, target in targets(document, step):
            if target not in ids:
                raise FlowProblem(f"step {step.id!r}: {field} goes to {target!r}, which is no step of this flow")
            edges[step.id].append(target)
    reached, todo = {document.first}, [document.first]
    while todo:
        for target in edges[todo.pop()]:
            if target not in reached:
                reached.add(target)
                todo.append(target)
    for step in document.steps:
        if step.id not in reached:
            raise FlowProblem(f"step {step.id!r}: unreachable (no step leads to it)")
    looping = _loop_without_wait(edges, {s.id for s in document.steps if isinstance(s, Gather)})
    if looping is not None:
        raise FlowProblem(f"step {looping!r}: in a loop with no gather (the call would spin without waiting)")


def _loop_without_wait(edges: dict[str, list[str]], waits: set[str]) -> str | None:
    """A step on a cycle that avoids every waiting step, or None (depth-first search, colours)."""
    graph = {n: [t for t in ts if t not in waits] for n, ts in edges.items() if n not in waits}
    colour: dict[str, int] = {}  # 1 on the stack, 2 done
    for root in graph:
        if root in colour:
            continue
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(graph[root]))]
        colour[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                colour[node] = 2
                stack.pop()
            elif colour.get(child) == 1:
                return child
            elif child not in colour:
                colour[child] = 1
                stack.append((child, iter(graph[child])))
    return None


def fill(template: str, variables: dict[str, str]) -> str:
    """``{name}`` replaced by the variable's value; unknown names are left as they are."""
    return _PLACEHOLDER.sub(lambda m: variables.get(m.group(1), m.group(0)), template)


def parse_flow(data: dict[str, Any]) -> FlowDocument:
    return FlowDocument.model_validate(data)
