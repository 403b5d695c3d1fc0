"""Hold on a media-stream call: the stream's process stops the agent hearing and answering the caller, and pauses
the call's recording unless the space records time on hold (``Space.record_hold``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class StreamHoldInput:
    stream_id: str
    on_hold: bool
    pause_recording: bool  # hold: pause the recorder; resume: end the pause hold began


@dataclass
class StreamHeld:
    on_hold: bool
    paused_span: tuple[float, float] | None = None  # on resume: the span hold left silent, in the file's seconds
