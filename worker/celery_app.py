"""The Celery application: Redis broker, JSON only, at-least-once delivery."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.app.amqp import AMQP

from worker.settings import Settings, get_settings

APPLY_COMMAND_TASK = "checkout.apply_command"


class RedactingAMQP(AMQP):
    """Task messages whose `argsrepr` names the command, never shows its body.

    Celery copies a repr of the arguments into every message's headers, worker logs
    and monitoring events; a command carries buyer emails and payment credentials.
    Retries build their messages here too, so they stay redacted.
    """

    def as_task_v2(self, task_id: str, name: str, args: Any = None, *rest: Any, **options: Any):
        if name == APPLY_COMMAND_TASK:
            options["argsrepr"] = command_summary(args)
        return super().as_task_v2(task_id, name, args, *rest, **options)


def command_summary(args: Any) -> str:
    command = args[0] if args and isinstance(args[0], dict) else {}
    return f"({command.get('type')!r} command {command.get('command_id')!r})"


def create_app(settings: Settings) -> Celery:
    app = Celery(
        "checkout", broker=settings.redis_url, include=["tasks.commands"], amqp=RedactingAMQP
    )
    app.conf.update(
        # Pickle would let anyone who can write to the broker run code in the worker.
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,  # results are the events on the stream
        # At least once: ack after the task ran, redeliver if the worker dies mid-task.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=settings.commands_queue,
        task_routes={APPLY_COMMAND_TASK: {"queue": settings.commands_queue}},
        # Longer than any task plus its longest retry countdown, or a slow message is
        # delivered twice (idempotency makes that safe, not free).
        broker_transport_options={"visibility_timeout": 3600},
        broker_connection_retry_on_startup=True,
        worker_send_task_events=False,
        enable_utc=True,
    )
    return app


# The worker's app. Tasks register on it when `tasks.commands` is imported (the
# worker does that through `include`); producers build their own with `create_app`.
app = create_app(get_settings())
