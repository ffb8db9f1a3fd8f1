"""The worker's log lines: JSON for log pipelines, or text that user input cannot forge.

`CHECKOUT_LOG_FORMAT=json`: one JSON object per log line.

Each line has `time`, `level`, `logger` and `message`, plus `command_id`,
`session_id`, `type`, `outcome` and `attempt` when the log call passed them in
`extra` (the processor's outcome line does). Nothing else from the record is
copied: a command body carries buyer emails and payment data, and must never
reach a log through an unexpected attribute.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from schemas.ids import escaped

# The `extra` fields a line may carry; anything else on the record stays out.
CONTEXT_FIELDS = ("command_id", "session_id", "type", "outcome", "attempt", "task_id")


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON (tracebacks included, escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def use_json(logger: logging.Logger) -> None:
    """Give every handler of `logger` the JSON formatter."""
    formatter = JsonFormatter()
    for handler in logger.handlers:
        handler.setFormatter(formatter)


class EscapingFormatter(logging.Formatter):
    """Text lines with user text escaped: a command id holding a newline and a log
    prefix would otherwise write a convincing fake line, and an escape sequence would
    reach the terminal of whoever tails the log.

    Wraps the formatter Celery set up (its colours and layout stay): the message is
    escaped whole; a traceback keeps its own line breaks, every other control escaped.
    """

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        safe = logging.makeLogRecord(record.__dict__)
        safe.msg, safe.args = escaped(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self.inner.formatException(record.exc_info)
        if record.exc_text:
            safe.exc_info, safe.exc_text = None, _escaped_lines(record.exc_text)
        return self.inner.format(safe)


def _escaped_lines(text: str) -> str:
    return "\n".join(escaped(line) for line in text.split("\n"))


def use_escaping(logger: logging.Logger) -> None:
    """Wrap the formatter of every handler of `logger` in `EscapingFormatter`."""
    for handler in logger.handlers:
        if not isinstance(handler.formatter, EscapingFormatter | JsonFormatter):
            handler.setFormatter(EscapingFormatter(handler.formatter or logging.Formatter()))
