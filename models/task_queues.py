"""The workers' task queues, each derived from the platform's ``task_queue`` setting (one name per deployment).

- ``task_queue`` itself: the call role (``CallWorkflow``, campaigns, numbers, provisioning, retention and
  their activities), ``workers.call_worker``.
- ``sms_pacer_task_queue``: the pacers (SMS numbers, dial routes), polled beside the call role.
- ``speech_task_queue``: the speech role (``SmsThreadWorkflow`` with its agent replies, ``TranscriptionWorkflow``
  with Whisper), ``workers.speech_worker``. It imports livekit-agents, onnxruntime and faster-whisper at start;
  the call role never does, so a worker holding thousands of calls stays small."""

from __future__ import annotations


def sms_pacer_task_queue(task_queue: str) -> str:
    """Pacers have a task queue of their own beside the workers' (``workers.call_worker.build_pacer_worker``)."""
    return f"{task_queue}-sms-pacer"


def speech_task_queue(task_queue: str) -> str:
    """SMS threads and transcriptions run on the speech role's queue (``workers.speech_worker``)."""
    return f"{task_queue}-speech"
