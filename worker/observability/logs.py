"""`CHECKOUT_LOG_FORMAT=json`: one JSON object per log line, for log pipelines.

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
