"""Structured logs for every process: JSON lines in production, readable ``key=value`` lines in ``telephony dev``.

Our modules log static messages with their fields in ``extra`` (``log.info("call opened", extra={"call_id":
...})``); the standard library's records are rendered by structlog with those fields. Personal data is masked on
the way out, whatever a module passes: phone numbers keep their country code and last two digits (enough for
support to tell two callers apart), DTMF digits, transcripts and message bodies are replaced by their length.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Literal, TextIO

import structlog

LogFormat = Literal["json", "console"]

# Fields that carry personal data, by name, wherever they come from.
PHONE_FIELDS = frozenset({"from_number", "to_number", "caller", "callee", "e164", "phone_number", "number", "party"})
CONTENT_FIELDS = frozenset({"digits", "dtmf", "text", "transcript", "body", "message_body"})
_PHONE = re.compile(r"\+?[0-9][0-9 ().-]{5,}[0-9]")
NOISY_LOGGERS = ("alembic.runtime.plugins", "httpx", "httpcore")


def mask_phone(value: str) -> str:
    """``+14155550123`` → ``+1********23``: the country code and the last two digits stay readable."""
    digits = [ch for ch in value if ch.isdigit()]
    if len(digits) < 5:
        return "*" * len(value)
    hidden = "*" * (len(digits) - 3)
    return f"+{digits[0]}{hidden}{''.join(digits[-2:])}"


def redact_personal_data(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if not isinstance(value, str) or key in ("event", "logger", "level", "timestamp"):
            continue
        if key in PHONE_FIELDS:
            event[key] = _PHONE.sub(lambda m: mask_phone(m.group(0)), value)
        elif key in CONTENT_FIELDS:
            event[key] = f"<{len(value)} chars>"
    return event


def _renderer(log_format: LogFormat) -> structlog.typing.Processor:
    if log_format == "json":
        return structlog.processors.JSONRenderer(sort_keys=False)
    return structlog.dev.ConsoleRenderer(colors=False, pad_event_to=0)


def configure_logging(log_format: LogFormat = "json", level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Route every standard-library logger (ours, uvicorn's, Temporal's) through one structured handler."""
    shared: list[structlog.typing.Processor] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
        redact_personal_data,
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _renderer(log_format),
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []  # propagate to ours instead of uvicorn's plain formatter
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
