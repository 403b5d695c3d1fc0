"""Process-wide switches for the offline speech engines (no network, no telemetry).

``quiet_onnxruntime()`` must run before any ONNX model is loaded: onnxruntime ≥ 1.2x sends telemetry from its
native threads (DNS lookups observed during calls) unless ``ORT_DISABLE_TELEMETRY=1`` is set and
``onnxruntime.disable_telemetry_events()`` is called. ``offline_env()`` makes Hugging Face libraries (pulled in by
faster-whisper) refuse to reach the hub. Both are idempotent and cheap.
"""

from __future__ import annotations

import os
import threading

_lock = threading.Lock()
_done = False


def offline_env() -> None:
    """Set the environment flags that keep model libraries off the network (only where not already set)."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def quiet_onnxruntime() -> None:
    """Disable onnxruntime telemetry (env flag + API call) once per process."""
    global _done
    with _lock:
        if _done:
            return
        offline_env()
        import onnxruntime

        disable = getattr(onnxruntime, "disable_telemetry_events", None)
        if disable is not None:
            disable()
        _done = True
