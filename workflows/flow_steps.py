"""The flow interpreter's decisions, as pure functions: which step comes next after a step's input, what a
gather makes of the keys pressed, whether a branch's condition holds at a given instant in the flow's time zone.
No I/O and no workflow APIs (the runner passes the time and the input in): deterministic, testable without a
server. ``workflows/flow_runner.py`` performs the steps' effects (prompts, hand-off, transfer, hang-up)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from models.flows import Branch, Condition, FlowDocument, Gather, Route, SetStep, Step, Webhook, fill


@dataclass
class FlowContext:
    """What conditions may look at: the time (UTC, aware), the caller's number, the variables so far."""

    now: datetime
    caller: str
    variables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Move:
    """Where the flow goes after a step (None: the end, which hangs up) and why, for the call's timeline."""

    next: str | None
    detail: str
    variables: dict[str, str] = field(default_factory=dict)  # set by the step


def is_open(document: FlowDocument, now: datetime) -> bool:
    """Business hours at the instant ``now`` (aware), in the flow's time zone (daylight saving included)."""
    local = now.astimezone(ZoneInfo(document.time_zone))
    return document.is_open(local.weekday(), local.time().replace(tzinfo=None))


def holds(document: FlowDocument, condition: Condition, ctx: FlowContext) -> bool:
    value = ctx.variables.get(condition.variable, "") if condition.variable else ""
    if condition.equals is not None and value != condition.equals:
        return False
    if condition.one_of is not None and value not in condition.one_of:
        return False
    if condition.caller_starts_with is not None and not ctx.caller.startswith(condition.caller_starts_with):
        return False
    return condition.business_hours is None or is_open(document, ctx.now) == condition.business_hours


def _route(document: FlowDocument, routes: list[Route], ctx: FlowContext) -> tuple[int, Route] | None:
    for index, route in enumerate(routes):
        if holds(document, route.when, ctx):
            return index, route
    return None


def branch(document: FlowDocument, step: Branch, ctx: FlowContext) -> Move:
    chosen = _route(document, step.routes, ctx)
    if chosen is not None:
        return Move(chosen[1].goto, f"route {chosen[0] + 1} -> {chosen[1].goto}")
    target = step.default or document.default_next(step)
    return Move(target, f"default -> {target or 'end'}")


def set_values(document: FlowDocument, step: SetStep, ctx: FlowContext) -> Move:
    values = {name: fill(value, ctx.variables) for name, value in step.values.items()}
    target = document.default_next(step)
    return Move(target, f"set {', '.join(sorted(values))} -> {target or 'end'}", values)


def webhook_answer(document: FlowDocument, step: Webhook, answer: dict[str, object] | None, ctx: FlowContext) -> Move:
    """After the endpoint answered (``answer``: its JSON object) or failed (None): variables and the next step."""
    if answer is None:
        target = step.on_failure or document.default_next(step)
        return Move(target, f"failed -> {target or 'end'}")
    values = {f"{step.prefix}{k}": str(v) for k, v in answer.items() if isinstance(v, str | int | float | bool)}
    chosen = _route(document, step.routes, FlowContext(ctx.now, ctx.caller, {**ctx.variables, **values}))
    if chosen is not None:
        return Move(chosen[1].goto, f"answered, route {chosen[0] + 1} -> {chosen[1].goto}", values)
    target = document.default_next(step)
    return Move(target, f"answered -> {target or 'end'}", values)


# ------------------------------------------------------------------------------------- gather
@dataclass(frozen=True)
class Keys:
    """What the keys pressed since a gather began amount to."""

    value: str  # the input, without the terminator
    complete: bool  # max digits reached or the terminator pressed


def read_keys(step: Gather, pressed: str) -> Keys:
    value = ""
    for key in pressed:
        if step.terminator is not None and key == step.terminator:
            return Keys(value, True)
        value += key
        if len(value) >= step.max_digits:
            return Keys(value, True)
    return Keys(value, False)


def read_speech(step: Gather, text: str) -> str:
    """The input an utterance stands for: the value of the first of ``speech_choices`` heard in it (whole words,
    any case), else the words themselves, lower case, without punctuation."""
    words = " ".join(re.findall(r"[a-z0-9']+", text.lower()))
    for phrase, value in step.speech_choices.items():
        wanted = " ".join(re.findall(r"[a-z0-9']+", phrase.lower()))
        if wanted and re.search(rf"(^| ){re.escape(wanted)}( |$)", words):
            return value
    return words


@dataclass(frozen=True)
class GatherOutcome:
    kind: str  # "input", "no_input" or "no_match"
    retry_prompt: str | None  # said before the prompt is repeated; None: no retry, go on to ``move``
    move: Move | None  # where to go when not retrying


def gather_outcome(document: FlowDocument, step: Gather, value: str, attempt: int) -> GatherOutcome:
    """``attempt`` counts from 0. Retried until ``retries`` is spent; then on_no_input / on_no_match (or next)."""
    following = document.default_next(step)
    if value and (step.choices is None or value in step.choices):
        return GatherOutcome("input", None, Move(following, f"input -> {following or 'end'}", {step.variable: value}))
    kind = "no_input" if not value else "no_match"
    if attempt < step.retries:
        prompt = step.no_input_prompt if kind == "no_input" else step.no_match_prompt
        return GatherOutcome(kind, prompt or "", None)
    target = (step.on_no_input if kind == "no_input" else step.on_no_match) or following
    return GatherOutcome(
        kind, None, Move(target, f"{kind.replace('_', ' ')} -> {target or 'end'}", {step.variable: value})
    )


def describe(step: Step) -> str:
    return f"{step.id} ({step.type})"
