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
import traceback
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
    escaped whole; a traceback keeps its layout's line breaks, and each exception's
    own text is escaped onto one line (`safe_traceback`).
    """

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        safe = logging.makeLogRecord(record.__dict__)
        safe.msg, safe.args = escaped(record.getMessage()), None
        if record.exc_info and record.exc_info[1] is not None:
            safe.exc_info, safe.exc_text = None, safe_traceback(record.exc_info[1])
        elif record.exc_text:
            safe.exc_text = _escaped_lines(record.exc_text)
        return self.inner.format(safe)


def safe_traceback(error: BaseException) -> str:
    """`error`'s traceback, chained ones first, as Python prints it, except that each
    exception's own text (which may hold user input) is escaped onto its one line:
    only the traceback's layout breaks lines."""
    parts: list[str] = []
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        stack = "".join(traceback.format_tb(link.__traceback__))
        head = "Traceback (most recent call last):\n" if stack else ""
        summary = "".join(traceback.format_exception_only(type(link), link)).rstrip("\n")
        parts.append(head + _escaped_lines(stack) + escaped(summary))
        link, joint = _cause(link)
        if link is not None:
            parts.append(joint)
    return "".join(reversed(parts))


def _cause(error: BaseException) -> tuple[BaseException | None, str]:
    if error.__cause__ is not None:
        return error.__cause__, _JOINTS[0]
    if error.__context__ is not None and not error.__suppress_context__:
        return error.__context__, _JOINTS[1]
    return None, ""


_JOINTS = (
    "\n\nThe above exception was the direct cause of the following exception:\n\n",
    "\n\nDuring handling of the above exception, another exception occurred:\n\n",
)


def _escaped_lines(text: str) -> str:
    return "\n".join(escaped(line) for line in text.split("\n"))


def use_escaping(logger: logging.Logger) -> None:
    """Wrap the formatter of every handler of `logger` in `EscapingFormatter`."""
    for handler in logger.handlers:
        if not isinstance(handler.formatter, EscapingFormatter | JsonFormatter):
            handler.setFormatter(EscapingFormatter(handler.formatter or logging.Formatter()))
