"""A Temporal worker process loads the speech stack and livekit-agents only when an activity needs them: a worker
that carries calls (routing, rooms, recordings' bookkeeping) stays light (bench.concurrency: worker RSS)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("livekit.agents", "livekit.plugins.silero", "onnxruntime", "av", "faster_whisper")


def test_the_worker_imports_no_speech_stack_until_an_activity_needs_it() -> None:
    probe = (
        "import json, sys, workers.worker, workflows.calls, workflows.sms_thread\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(loaded.stdout.strip().splitlines()[-1]) == []


def test_the_speech_package_still_gives_its_names() -> None:
    from voice import speech

    assert speech.build_tts("local-espeak").__class__ is speech.EspeakTTS
    assert callable(speech.load_vad) and speech.LOCAL_STT_PROVIDERS == ("local-whisper",)
