"""The parts of one call's recording, and joining them into one file.

A call whose media process died (kill -9) or drained (SIGTERM) goes on on another process, which records its own
part (``<stream id>.wav``, beside the first). Each part has a manifest (``<stream id>.json``) written when it
starts and whenever its pauses change: the wall-clock time of its first sample and its paused spans, so a part
left by a dead process still says where it belongs. :func:`join_parts` lays the parts on one timeline (the
time between them is silence; parts that overlap, as a draining process's stream can with its successor's, are
put end to end so no audio is lost) and writes one stereo WAV with the paused spans of all of them.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from voice.recording.stereo import HEADER_BYTES, SAMPLE_RATE, repair_wav, wav_header

_FRAME_BYTES = 4  # stereo, 16-bit
_COPY_CHUNK = 1 << 20


def manifest_path(wav: Path) -> Path:
    return wav.with_suffix(".json")


@dataclass
class PartManifest:
    path: Path  # the part's WAV
    started_at: float  # epoch seconds of the file's first sample
    paused_spans: list[tuple[float, float]] = field(default_factory=list)  # seconds of the file
    open_pause: float | None = None  # a pause not ended yet (the process may have died during it)

    @classmethod
    def begin(cls, wav: Path, started_at: float) -> PartManifest:
        manifest = cls(wav, started_at)
        manifest._write()
        return manifest

    @classmethod
    def read(cls, wav: Path) -> PartManifest | None:
        try:
            data = json.loads(manifest_path(wav).read_text())
            return cls(
                wav,
                float(data["started_at"]),
                [(float(a), float(b)) for a, b in data.get("paused_spans", [])],
                None if data.get("open_pause") is None else float(data["open_pause"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def paused_from(self, at: float) -> None:
        self.open_pause = at
        self._write()

    def paused(self, span: tuple[float, float]) -> None:
        self.paused_spans.append(span)
        self.open_pause = None
        self._write()

    def closed(self, spans: list[tuple[float, float]]) -> None:
        self.paused_spans, self.open_pause = list(spans), None
        self._write()

    def _write(self) -> None:
        target = manifest_path(self.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        data = {"started_at": self.started_at, "paused_spans": self.paused_spans, "open_pause": self.open_pause}
        temporary = target.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(data))
        os.replace(temporary, target)  # a crash leaves the old manifest or the new one, never half of one


@dataclass
class JoinedRecording:
    path: Path
    paused_spans: list[tuple[float, float]]
    joined: int  # parts found and joined
    missing: int  # parts not on this machine (their process's disk): their time is silence


def join_parts(parts: list[Path], out: Path) -> JoinedRecording:
    """Join the call's parts (in the order they were recorded) into ``out``; a part without a manifest follows
    the one before it. Parts are left in place (see :func:`remove_parts`)."""
    present = [p for p in parts if p.is_file()]
    manifests = {p: PartManifest.read(p) for p in present}
    origin = next((m.started_at for m in manifests.values() if m is not None), 0.0)
    spans: list[tuple[float, float]] = []
    written = 0  # frames in ``out``
    temporary = out.with_suffix(".joining")
    with temporary.open("wb") as sink:
        sink.write(wav_header(0, SAMPLE_RATE))
        for part in present:
            frames = repair_wav(part)  # a part left by a killed process: its header covers every complete frame
            manifest = manifests[part]
            offset = written
            if manifest is not None:
                offset = max(written, round((manifest.started_at - origin) * SAMPLE_RATE))
            _zeros(sink, offset - written)
            with part.open("rb") as source:
                source.seek(HEADER_BYTES)
                _copy(source, sink, frames * _FRAME_BYTES)
            written = offset + frames
            if manifest is not None:
                shift, length = offset / SAMPLE_RATE, frames / SAMPLE_RATE
                part_spans = list(manifest.paused_spans)
                if manifest.open_pause is not None:
                    part_spans.append((manifest.open_pause, length))
                spans.extend((round(a + shift, 3), round(min(b, length) + shift, 3)) for a, b in part_spans)
        sink.seek(0)
        sink.write(wav_header(written * _FRAME_BYTES, SAMPLE_RATE))
        sink.flush()
        os.fsync(sink.fileno())
    os.replace(temporary, out)
    PartManifest(out, origin, spans).closed(spans)  # a retried join after the parts went finds this
    return JoinedRecording(out, spans, len(present), len(parts) - len(present))


def joined_before(out: Path, parts: list[Path]) -> JoinedRecording | None:
    """The join an earlier attempt finished (its parts already removed), if that is what is on disk."""
    manifest = PartManifest.read(out)
    if manifest is None or not out.is_file() or any(p.is_file() for p in parts):
        return None
    return JoinedRecording(out, manifest.paused_spans, len(parts), 0)


def remove_parts(parts: list[Path]) -> None:
    for part in parts:
        for path in (part, manifest_path(part)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _zeros(sink: BinaryIO, frames: int) -> None:
    remaining = frames * _FRAME_BYTES
    block = bytes(min(remaining, _COPY_CHUNK))
    while remaining > 0:
        n = min(remaining, len(block))
        sink.write(block[:n])
        remaining -= n


def _copy(source: BinaryIO, sink: BinaryIO, count: int) -> None:
    remaining = count
    while remaining > 0:
        chunk = source.read(min(remaining, _COPY_CHUNK))
        if not chunk:
            break
        sink.write(chunk)
        remaining -= len(chunk)
