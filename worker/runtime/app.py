"""The Celery application: Redis broker, JSON only, at-least-once delivery."""

from __future__ import annotations

import importlib
import ssl
from typing import Any
from urllib.parse import parse_qs, urlparse

from celery import Celery
from celery.app.amqp import AMQP

from worker.delivery.journal import MAX_COMMANDS_PER_MESSAGE
from worker.runtime.reprs import REDACTED_KWARGSREPR, command_argsrepr, commands_argsrepr
from worker.runtime.serialization import SERIALIZER, register_serializer
from worker.settings import Settings, get_settings

APPLY_COMMAND_TASK = "checkout.apply_command"
# Several commands in one message (`enqueue_batched` in pipeline.lua: bulk sends).
APPLY_COMMANDS_TASK = "checkout.apply_commands"


# What a message's `argsrepr` shows of each task's arguments (`worker.runtime.reprs`).
ARGSREPRS = {APPLY_COMMAND_TASK: command_argsrepr, APPLY_COMMANDS_TASK: commands_argsrepr}
# Any other task (the worker runs none: `worker.runtime.consumer`).
OTHER_TASK_ARGSREPR = "(redacted)"


class RedactingAMQP(AMQP):
    """Task messages whose `argsrepr` names the command, never shows its body.

    Celery copies a repr of the arguments into every message's headers, worker logs
    and monitoring events; a command carries buyer emails and payment credentials.
    Retries build their messages here too, so they stay redacted.
    """

    def as_task_v2(self, task_id: str, name: str, args: Any = None, *rest: Any, **options: Any):
        if name in ARGSREPRS:
            kwargs = rest[0] if rest else options.get("kwargs")
            options["argsrepr"] = redacted_argsrepr(name, args, kwargs)
            options["kwargsrepr"] = REDACTED_KWARGSREPR
        return super().as_task_v2(task_id, name, args, *rest, **options)


def redacted_argsrepr(task: str, args: Any, kwargs: Any) -> str:
    """What Celery may show of a `task` message's arguments: never the commands."""
    summary = ARGSREPRS.get(task)
    return summary(args, kwargs) if summary else OTHER_TASK_ARGSREPR


def create_app(settings: Settings) -> Celery:
    register_serializer()
    app = Celery(
        "checkout",
        broker=settings.redis_url,
        include=["worker.runtime.tasks", "worker.runtime.signals", "worker.runtime.task_events"],
        amqp=RedactingAMQP,
    )
    visibility = settings.visibility_timeout
    command_time_limit = settings.command_time_limit
    app.conf.update(
        # Pickle would let anyone who can write to the broker run code in the worker.
        task_serializer="json",
        # The delivery script's messages carry the pipeline's own JSON content type (read
        # without kombu's type markers); other clients' plain `application/json`.
        accept_content=["json", SERIALIZER],
        result_serializer="json",
        task_ignore_result=True,  # results are the events on the stream
        # At least once: ack after the task ran, redeliver if the worker dies mid-task.
        # What kombu cannot redeliver (a message taken by a worker killed before it
        # recorded it) the journal does (`worker.delivery.journal`).
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=False,
        worker_prefetch_multiplier=1,
        # A command stuck in a child this long is killed; the journal delivers it again
        # and counts the death (a command that keeps killing its worker is dead-lettered).
        task_time_limit=command_time_limit,
        # Celery's limit is per message: a batched one gets the limit of as many commands
        # as it may carry, or a healthy message of slow commands would be killed over and
        # over. Inside it each command has the per-command limit (`worker.delivery.watchdog`); this
        # one is the backstop for a command stuck where a signal cannot reach it.
        task_annotations={
            APPLY_COMMANDS_TASK: {"time_limit": command_time_limit * MAX_COMMANDS_PER_MESSAGE}
        },
        task_default_queue=settings.commands_queue,
        task_routes={
            APPLY_COMMAND_TASK: {"queue": settings.commands_queue},
            APPLY_COMMANDS_TASK: {"queue": settings.commands_queue},
        },
        broker_transport_options={
            # kombu restores unacked messages of dead workers after this; the journal
            # usually does it sooner (heartbeats). Duplicates are skipped at claim.
            "visibility_timeout": visibility,
            # Take queues in the order the worker names them: interactive before bulk.
            "queue_order_strategy": "priority",
            # BRPOP's timeout, seconds: an idle worker process asks Redis again this
            # often (kombu's default is 1): 0.03 calls/s. A message wakes it at once
            # whatever the value, and a stop unblocks it (`transport.Channel.close`). A
            # half-open connection is dropped after this plus kombu's 25 s health check.
            "polling_interval": 30,
        },
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # Redis restarting: reconnect until it is back
        # Off unless asked: see `Settings.task_events` and `worker.runtime.task_events`.
        worker_send_task_events=settings.task_events,
        worker_consumer="worker.runtime.consumer:DeadLetteringConsumer",
        enable_utc=True,
        **_transport_settings(settings.redis_url),
    )
    return app


def _transport_settings(url: str) -> dict[str, Any]:
    """Our kombu transport (dead-letters undecodable items), with TLS for `rediss://`.

    Naming the transport by class bypasses kombu's `rediss` scheme handling, so TLS
    options come from the URL here: `?ssl_cert_reqs=required|optional|none`.
    """
    options: dict[str, Any] = {"broker_transport": "worker.runtime.transport:Transport"}
    parsed = urlparse(url)
    if parsed.scheme == "rediss":
        wanted = parse_qs(parsed.query).get("ssl_cert_reqs", ["required"])[0].lower()
        requirement = {
            "required": ssl.CERT_REQUIRED,
            "optional": ssl.CERT_OPTIONAL,
            "none": ssl.CERT_NONE,
        }.get(wanted.removeprefix("cert_"), ssl.CERT_REQUIRED)
        options["broker_use_ssl"] = {"ssl_cert_reqs": requirement}
    return options


PRELOADED = (
    "celery.apps.worker",
    "celery.concurrency.solo",
    "celery.worker.consumer",
    "kombu.transport.redis",
    "worker.runtime.bootstrap",
    "worker.runtime.transport",
)


def preload_for_fork() -> None:
    """Import what every solo process would import for itself (Celery's worker, kombu's
    Redis transport, the tasks and what they wire) before `worker.runtime.solo_group`
    forks them, so they share it, as prefork's pool processes share their main
    process's: a worker of two solo processes started on 1.36-1.51 s of CPU instead of
    1.66-1.78 (prefork 1.15-1.37). Imports only: no connection or thread before the fork."""
    for name in PRELOADED:
        importlib.import_module(name)
    app.loader.import_default_modules()  # the tasks, signals and task events (`include`)


def worker_queues(settings: Settings) -> list[str]:
    """The queues a worker consumes, first first: interactive commands before bulk."""
    return [settings.commands_queue, settings.bulk_queue]


# The worker's app. Tasks register on it when `worker.runtime.tasks` is imported (the
# worker does that through `include`); producers build their own with `create_app`.
app = create_app(get_settings())
