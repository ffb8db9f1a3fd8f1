"""What Celery is told of each outcome (`worker.runtime.task_states`): the task states
Flower counts. Eager mode runs the real tasks in this process with a stand-in processor;
`tests/e2e/test_task_events.py` reads the same states off a real worker's events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from celery import states

import worker.runtime.tasks as tasks
from worker.delivery.jids import task_id_of
from worker.delivery.outcomes import Outcome
from worker.errors import JournalUnavailable
from worker.runtime.task_states import DeadLettered, Parked, Retrying, one_line

COMMAND = {"type": "cancel_session", "command_id": "c-1", "session_id": "s-1"}


class Processor:
    """Returns (or raises) what it is given, for whichever task calls it."""

    def __init__(self) -> None:
        self.outcome: Any = "applied"

    def _answer(self) -> Any:
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome

    def process(self, command: Any, **_: Any) -> Any:
        return self._answer()

    def process_many(self, commands: Any, **_: Any) -> Any:
        return self._answer()


@pytest.fixture
def processor(monkeypatch: pytest.MonkeyPatch) -> Iterator[Processor]:
    stand_in = Processor()
    monkeypatch.setattr(tasks, "get_processor", lambda: stand_in)
    yield stand_in


def run_one(outcome: Any, processor: Processor) -> Any:
    processor.outcome = outcome
    return tasks.apply_command.apply(args=[COMMAND], kwargs={"jid": "1-1"}, task_id="1-1")


@pytest.mark.parametrize("outcome", ["applied", "rejected:validation_error"])
def test_an_answered_command_succeeds_and_its_result_names_the_outcome(outcome, processor):
    result = run_one(outcome, processor)
    assert (result.state, result.result) == (states.SUCCESS, outcome)


def test_a_dead_lettered_command_fails_with_why(processor):
    result = run_one(
        Outcome("dead_lettered", "retries_exhausted: DynamoDB\nunreachable"), processor
    )
    assert result.state == states.FAILURE
    assert isinstance(result.result, DeadLettered)
    assert str(result.result) == "retries_exhausted: DynamoDB unreachable"
    assert DeadLettered in tasks.apply_command.throws  # logged in one line, no traceback


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [
        (Outcome("retry", "attempt 1 failed (TimeoutError); again in 0.2s"), Retrying),
        ("park", Parked),
    ],
)
def test_a_retried_or_parked_command_is_retry_under_the_same_task(outcome, reason, processor):
    result = run_one(outcome, processor)
    assert result.state == states.RETRY
    assert result.id == "1-1"
    assert isinstance(result.result.exc, reason)


@pytest.mark.parametrize("verdict", ["skip", "busy"])
def test_a_duplicate_delivery_is_ignored_not_counted(verdict, processor):
    assert run_one(verdict, processor).state == states.IGNORED


def test_redis_refusing_the_journal_is_retry_not_failure(processor):
    result = run_one(JournalUnavailable("Connection refused"), processor)
    assert result.state == states.RETRY
    assert "Redis refused the journal: Connection refused" in str(result.result)


def test_a_batched_message_succeeds_with_each_outcome_or_fails_if_one_dead_lettered(processor):
    processor.outcome = ["applied", "park", "rejected:session_not_found"]
    ok = tasks.apply_commands.apply(args=[[COMMAND] * 3, ["1-1", "1-2", "1-3"]])
    assert (ok.state, ok.result) == (states.SUCCESS, processor.outcome)

    processor.outcome = ["applied", Outcome("dead_lettered", "worker_lost: died 3 times")]
    failed = tasks.apply_commands.apply(args=[[COMMAND] * 2, ["1-1", "1-2"]])
    assert failed.state == states.FAILURE
    assert str(failed.result) == "1 of 2 commands dead-lettered: worker_lost: died 3 times"


def test_an_adopted_entry_keeps_its_senders_task_id():
    assert task_id_of("1733-7") == "1733-7"
    assert task_id_of("Tb6d0c6a4-uuid") == "b6d0c6a4-uuid"


def test_details_are_one_bounded_line():
    assert one_line("a\n  b\tc") == "a b c"
    assert len(one_line("x" * 1000)) == 300
