"""The calls whose audio this process carries, by stream id: the ``carry_media`` activity finds its stream here."""

from __future__ import annotations

from activities.media_streams import LiveStream


class StreamRegistry:
    def __init__(self) -> None:
        self._streams: dict[str, LiveStream] = {}
        self._paused: dict[str, list[tuple[float, float]]] = {}  # finished recordings' silent spans

    def finished(self, stream_id: str, paused_spans: list[tuple[float, float]]) -> None:
        """The stream ended and its recording is closed: remember what the store needs of it (only spans: a
        stream that was never paused, or never recorded, leaves nothing behind for a store that may never come)."""
        if paused_spans:
            self._paused[stream_id] = paused_spans
        self._streams.pop(stream_id, None)

    def paused_spans(self, stream_id: str) -> list[tuple[float, float]]:
        return self._paused.pop(stream_id, [])

    def add(self, stream_id: str, stream: LiveStream) -> None:
        self._streams[stream_id] = stream

    def discard(self, stream_id: str) -> None:
        self._streams.pop(stream_id, None)

    def get(self, stream_id: str) -> LiveStream | None:
        return self._streams.get(stream_id)

    def live(self) -> dict[str, LiveStream]:
        """The streams carried now (a copy: a drain hands them over while they leave)."""
        return dict(self._streams)

    def __len__(self) -> int:
        return len(self._streams)
