"""How workflows read an activity's failure: a local activity's arrives as the activity's own ApplicationError,
a (remote) activity's as an ActivityError wrapping it. Both are treated the same."""

from __future__ import annotations

from temporalio.exceptions import ActivityError, ApplicationError

ActivityFailure = (ActivityError, ApplicationError)


def failure_reason(exc: ActivityError | ApplicationError) -> str:
    """The human-readable reason, for the call's timeline and the caller of an update."""
    if isinstance(exc, ApplicationError):
        return exc.message
    cause = exc.cause
    return cause.message if isinstance(cause, ApplicationError) else str(cause or exc)
