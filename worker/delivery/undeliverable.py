"""Messages no task can ever process go to the dead-letter store, not into a loop.

Called from the worker's main process (the kombu channel and the Celery consumer)
for a message that is not JSON, not a Celery message, names an unknown task, or
cannot be decoded. The message is kept as it came, and a `command.dead_lettered`
event says so; the worker goes on with the next message.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from worker.delivery.journal import DeadLetter, Journal
from worker.delivery.retry_policy import dead_letter_event_for

logger = logging.getLogger("checkout.worker")

MAX_RAW_CHARS = 256 * 1024


def bury(journal: Journal, raw: str | bytes, *, queue: str, reason: str, error_type: str) -> str:
    """Dead-letter `raw` as it came off `queue`; returns its dead-letter id."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    entry_id = "raw-" + hashlib.sha256(text.encode()).hexdigest()[:24]
    dead_letter = DeadLetter("undeliverable", error_type, reason)
    command = _command_of(text)
    event = dead_letter_event_for(entry_id, command, dead_letter)
    journal.bury(
        entry_id,
        queue=queue,
        raw=text[:MAX_RAW_CHARS],
        event_json=event.to_json(),
        dead_letter=dead_letter,
    )
    # No body in the log: it may carry buyer or payment data.
    logger.error("undeliverable message on %s dead-lettered as %s: %s", queue, entry_id, reason)
    return entry_id


def _command_of(text: str) -> Any:
    """The command, if the message is a Celery message carrying one (else None)."""
    try:
        message = json.loads(text)
        body: Any = message.get("body") if isinstance(message, dict) else None
        args = json.loads(body)[0] if isinstance(body, str) else None
        return args[0] if isinstance(args, list) and args else None
    except (ValueError, TypeError, KeyError, IndexError):
        return None
