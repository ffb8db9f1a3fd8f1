"""The Celery application: Redis broker, JSON only, at-least-once delivery."""

from __future__ import annotations

from celery import Celery

from worker.settings import Settings, get_settings

APPLY_COMMAND_TASK = "checkout.apply_command"


def create_app(settings: Settings) -> Celery:
    app = Celery("checkout", broker=settings.redis_url, include=["tasks.commands"])
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
