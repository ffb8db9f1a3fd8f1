"""The Celery tasks that apply checkout commands. Thin: the logic is in `worker`;
what Celery (and Flower) is told of each outcome is `worker.runtime.task_states`."""

from __future__ import annotations

from typing import Any

from celery import Task

from worker.errors import JournalUnavailable
from worker.runtime.app import APPLY_COMMAND_TASK, APPLY_COMMANDS_TASK, app
from worker.runtime.bootstrap import get_processor
from worker.runtime.task_states import DeadLettered, journal_refused, report, report_many
from worker.settings import get_settings


# Celery's retries are not used: a retry message (an ETA task) waits in a worker's
# memory, unacked, and comes back only after the visibility timeout if that worker
# dies; and when the broker refuses it, Celery acks the original and the command is
# gone. A failed attempt is recorded in the journal instead, and the reaper delivers
# it again when its backoff is over (`worker.delivery.processor`); the task only
# reports it as RETRY.
@app.task(
    bind=True, name=APPLY_COMMAND_TASK, acks_on_failure_or_timeout=False, throws=(DeadLettered,)
)
def apply_command(self: Task, command: Any, jid: str | None = None) -> str:
    """Apply one delivery of a command; returns (or raises, `task_states.report`) what
    happened to it.

    When Redis refuses the journal the task ends RETRY: the message is acked, the
    journal entry (if any) stays, and the reaper delivers it again once its queue has
    moved past it or drained (`reap` in pipeline.lua).
    """
    try:
        outcome = get_processor().process(
            command,
            jid=jid,
            task_id=self.request.id,
            queue=_queue_of(self),
            limit=_own_time_limit(),
        )
    except JournalUnavailable as error:
        raise journal_refused(error) from error
    return report(outcome)


# A message of several commands (`enqueue_batched`: the bulk queue), so Celery's
# per-message cost is paid once for all of them. Each command still goes through
# its own claim -> apply -> finish (`CommandProcessor.process_many`). Its time limit
# is scaled to the commands it may carry (`worker.runtime.app`).
@app.task(
    bind=True, name=APPLY_COMMANDS_TASK, acks_on_failure_or_timeout=False, throws=(DeadLettered,)
)
def apply_commands(self: Task, commands: Any, jids: Any = None) -> list[str]:
    """Apply one delivery of a batched message, command by command; returns what
    happened to each (FAILURE if one was dead-lettered, `task_states.report_many`).

    When Redis refuses the journal the task ends RETRY, as `apply_command` does: the
    commands not finished yet are delivered again (those finished are skipped then).
    """
    try:
        outcomes = get_processor().process_many(
            commands, jids=jids, task_id=self.request.id, queue=_queue_of(self)
        )
    except JournalUnavailable as error:
        raise journal_refused(error) from error
    return report_many(outcomes)


def _own_time_limit() -> float:
    """The time limit a one-command message's command has of its own: none under
    prefork, where Celery kills a pool process past `task_time_limit`; Celery's solo pool
    enforces no time limit, so there the command has the watchdog's (same length)."""
    settings = get_settings()
    return settings.command_time_limit if settings.worker_pool == "solo" else 0


def _queue_of(task: Task) -> str:
    """The queue the message came from (where a retry or a woken successor goes back to)."""
    return (task.request.delivery_info or {}).get("routing_key") or app.conf.task_default_queue
