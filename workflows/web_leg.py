"""A console call (media mode ``web``): the browser's socket is served by a media process, which carries the audio
and the agent itself, so there is nothing to dial, record or tear down here. When the call runs a flow, the
socket's process attaches itself (``attach_media``) so the flow's prompts reach it on that process's task queue,
as they reach a carrier media stream; an agent call never attaches (its history is what it always was)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models import calls as c
    from workflows.call_leg import CallLeg, LegCapabilities


class WebLeg(CallLeg):
    _stream: c.AttachMedia | None = None  # the console socket carrying a flow's call

    def capabilities(self) -> LegCapabilities:
        return LegCapabilities(carries_media_streams=True)

    def media_stream(self) -> c.AttachMedia | None:
        return self._stream

    def attach_media(self, request: c.AttachMedia, record: bool = False) -> bool:
        """A socket lives as long as its call (no other process takes a console call over): attached once."""
        resumed = self._stream is not None
        self._stream = request
        self.host.k.note("media_attached", workflow.now(), request.task_queue)
        return resumed
