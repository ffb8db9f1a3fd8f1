"""Celery's task consumer, dead-lettering what Celery would log and drop, and
deciding from its own settings, not a message's claims, what runs and for how long.

Celery acks a message it cannot decode, whose task it does not know, or that is
not a valid task message, leaving only a log line (which, by default, includes the
body: buyer data). Here such a message is dead-lettered with its raw content and
a `command.dead_lettered` event, logged without its body, and acked.

Only the project's tasks run from its queues: Celery's built-in ones (`celery.map`,
`celery.starmap`, `celery.chord_unlock`, ...) are unknown tasks here, so anyone who can
write to the broker cannot make a worker run them. A message's `timelimit` header is
ignored: time limits come from settings (`worker.runtime.app`), so a forged 0.01 s
limit cannot kill pool processes.
"""

from __future__ import annotations

import json
from typing import Any

from celery.worker.consumer import Consumer

from worker.delivery.undeliverable import bury
from worker.runtime.app import APPLY_COMMAND_TASK, APPLY_COMMANDS_TASK
from worker.runtime.bootstrap import get_journal

# The tasks a checkout worker runs (`worker.runtime.tasks`).
PROJECT_TASKS = frozenset({APPLY_COMMAND_TASK, APPLY_COMMANDS_TASK})
NO_TIME_LIMIT_HEADER = (None, None)


class DeadLetteringConsumer(Consumer):
    def update_strategies(self) -> None:
        super().update_strategies()
        for name in set(self.strategies) - PROJECT_TASKS:
            del self.strategies[name]

    def create_task_handler(self, *args: Any, **kwargs: Any) -> Any:
        handle = super().create_task_handler(*args, **kwargs)

        def on_task_received(message: Any) -> Any:
            headers = getattr(message, "headers", None)
            if isinstance(headers, dict) and tuple(headers.get("timelimit") or ()) not in (
                (),
                NO_TIME_LIMIT_HEADER,
            ):
                headers["timelimit"] = list(NO_TIME_LIMIT_HEADER)
            return handle(message)

        return on_task_received

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        self._bury(message, f"cannot decode the message body: {exc}", exc)

    def on_unknown_message(self, body: Any, message: Any) -> None:
        self._bury(message, "not a Celery task message", None)

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        task = (message.headers or {}).get("task")
        self._bury(message, f"unknown task {task!r}", exc)

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        self._bury(message, f"invalid task message: {exc}", exc)

    def _bury(self, message: Any, reason: str, exc: Exception | None) -> None:
        queue = (message.delivery_info or {}).get("routing_key") or ""
        raw = json.dumps({"headers": message.headers, "body": _text(message.body)}, default=str)
        error_type = type(exc).__name__ if exc else "UnknownMessage"
        bury(get_journal(), raw, queue=queue, reason=reason[:500], error_type=error_type)
        message.ack()


def _text(body: Any) -> str:
    return body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
