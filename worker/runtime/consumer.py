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

A message's `argsrepr` and `kwargsrepr` are rewritten to the redacted forms
(`worker.runtime.reprs`) before Celery shows them: a standard Celery client puts a
repr of the whole command there, buyer email included.
"""

from __future__ import annotations

import json
from typing import Any

from celery.worker.consumer import Consumer

from worker.delivery.jids import task_id_of
from worker.delivery.undeliverable import bury
from worker.runtime.app import APPLY_COMMAND_TASK, APPLY_COMMANDS_TASK, redacted_argsrepr
from worker.runtime.bootstrap import get_journal
from worker.runtime.reprs import REDACTED_KWARGSREPR
from worker.runtime.task_states import report_undeliverable

# The tasks a checkout worker runs (`worker.runtime.tasks`).
PROJECT_TASKS = frozenset({APPLY_COMMAND_TASK, APPLY_COMMANDS_TASK})
NO_TIME_LIMIT_HEADER = (None, None)


class DeadLetteringConsumer(Consumer):
    def update_strategies(self) -> None:
        super().update_strategies()
        for name in set(self.strategies) - PROJECT_TASKS:
            del self.strategies[name]
        for name, strategy in self.strategies.items():
            self.strategies[name] = _redacting(name, strategy)

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
        entry_id = bury(get_journal(), raw, queue=queue, reason=reason[:500], error_type=error_type)
        headers = message.headers if isinstance(message.headers, dict) else {}
        task_id = headers.get("id")
        if not isinstance(task_id, str) or not task_id:
            task_id = task_id_of(entry_id)
        report_undeliverable(self.event_dispatcher, task_id, reason)
        message.ack()


def _redacting(task: str, strategy: Any) -> Any:
    """`strategy` (Celery's handler of one task's messages), given redacted messages.

    Why here: a task's strategy is the first place that reads `argsrepr` (into the
    `Task ... received` log record's data, the `task_received` signal, the
    `task-received` event Flower shows, and the request `inspect` lists, which the pool
    gets too), and every message a worker runs passes it,
    whichever transport path delivered it. The kombu channel sees messages earlier, but
    with their bodies still encoded, and what it changes is what kombu's unacked copy and
    dead letters keep; messages that never reach a strategy are dead-lettered as they
    came, and no log or event shows their headers.
    """

    def handle(message: Any, body: Any, *args: Any, **kwargs: Any) -> Any:
        redact_reprs(task, message, body)
        return strategy(message, body, *args, **kwargs)

    return handle


def redact_reprs(task: str, message: Any, body: Any) -> None:
    """Rewrite the reprs of `message` (protocol 2: headers; protocol 1: its decoded
    `body`, read before the headers) to what Celery may show of its arguments.

    The arguments come from the decoded body: Celery decodes it in the consumer
    anyway (`message.payload`, cached). A body that cannot be decoded raises here as
    it would in the strategy, and is dead-lettered the same way.
    """
    payload = body if body is not None else message.payload
    if isinstance(payload, dict):  # protocol 1
        args, task_kwargs = payload.get("args"), payload.get("kwargs")
    elif isinstance(payload, list | tuple) and payload:
        args, task_kwargs = payload[0], payload[1] if len(payload) > 1 else None
    else:
        args = task_kwargs = None
    reprs = {
        "argsrepr": redacted_argsrepr(task, args, task_kwargs),
        "kwargsrepr": REDACTED_KWARGSREPR,
    }
    if isinstance(payload, dict):
        payload.update(reprs)
    if isinstance(message.headers, dict):
        message.headers.update(reprs)
    # Python's `send_task(argsrepr=...)` also puts them in the properties, which the
    # request carries to the pool (and its debug log) with the headers.
    properties = getattr(message, "properties", None)
    if isinstance(properties, dict):
        for name in reprs.keys() & properties.keys():
            properties[name] = reprs[name]


def _text(body: Any) -> str:
    return body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
