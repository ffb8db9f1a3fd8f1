"""What Celery, and so Flower and `celery events`, is told about each delivery.

The task id is the command's journal entry (`task_id_of` in pipeline.lua), the same
for every delivery of it, so a command is one task whose last event says its outcome:

| processor outcome  | task state | event          | shown as                                   |
|--------------------|------------|----------------|--------------------------------------------|
| applied            | SUCCESS    | task-succeeded | result `'applied'`                         |
| rejected:<code>    | SUCCESS    | task-succeeded | result `'rejected:<code>'`                 |
| dead_lettered      | FAILURE    | task-failed    | `DeadLettered('<code>: <why>')`            |
| retry, park        | RETRY      | task-retried   | `Retrying(...)` / `Parked(...)`; runs again |
| skip, busy         | IGNORED    | none           | a duplicate delivery: nothing changes      |

A rejection is a success of the pipeline (the command got its answer, an event says
why); only a dead letter, which needs an operator, is a failure: Flower's failed count
is the number of dead-lettered commands. Every state is reached by the task returning
or raising; the message is acked either way (the journal, not Celery, redelivers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from celery.exceptions import Ignore, Retry

MAX_DETAIL_CHARS = 300


class DeadLettered(Exception):
    """The command was dead-lettered (`checkout dlq list`): the task's FAILURE.

    Listed in the tasks' `throws`: Celery logs it in one line, without a traceback.
    """


class Parked(Exception):
    """The command waits for its session's earlier command; it is delivered again,
    under the same task id, when that one finishes."""


class Retrying(Exception):
    """The attempt failed and is retried after a backoff, under the same task id."""


class JournalRefused(Exception):
    """Redis refused the journal; the reaper delivers the command again."""


PARKED = "waiting for its session's earlier command"


def report(outcome: str) -> str:
    """The task's result for one command's `outcome`; raises what gives it its state."""
    detail = one_line(getattr(outcome, "detail", ""))
    if outcome == "dead_lettered":
        raise DeadLettered(detail or "dead-lettered")
    if outcome == "park":
        raise Retry(PARKED, exc=Parked(PARKED))
    if outcome == "retry":
        raise Retry(detail or "retrying", exc=Retrying(detail or "retrying"))
    if outcome in ("skip", "busy"):
        raise Ignore(f"a duplicate delivery ({outcome})")
    return str(outcome)


def report_many(outcomes: Sequence[str]) -> list[str]:
    """The result of a batched message: its outcomes, or FAILURE if any command was
    dead-lettered. Its parked and retried commands come back as messages of their own
    (tasks of their own in Flower), so they do not make the batch a RETRY."""
    dead = [one_line(getattr(o, "detail", "")) for o in outcomes if o == "dead_lettered"]
    if dead:
        raise DeadLettered(f"{len(dead)} of {len(outcomes)} commands dead-lettered: {dead[0]}")
    return [str(outcome) for outcome in outcomes]


def report_undeliverable(dispatcher: Any, task_id: str, reason: str) -> None:
    """Send `task-failed` for a message dead-lettered before it became a task (it could
    not be decoded, or names no task of ours), so Flower's failed count stays the number
    of dead letters. Only while task events are on: the dispatcher drops it otherwise."""
    if dispatcher is None:
        return
    failure = DeadLettered(one_line(f"undeliverable: {reason}"))
    dispatcher.send("task-failed", uuid=task_id, exception=repr(failure), traceback="")


def journal_refused(error: Exception) -> Retry:
    """The RETRY a task raises when Redis refused the journal mid-delivery."""
    why = one_line(f"Redis refused the journal: {error}")
    return Retry(why, exc=JournalRefused(why))


def one_line(text: str) -> str:
    """`text` on one line, at most MAX_DETAIL_CHARS long (what an event or log shows)."""
    line = " ".join(str(text).split())
    return line if len(line) <= MAX_DETAIL_CHARS else line[: MAX_DETAIL_CHARS - 1] + "…"
