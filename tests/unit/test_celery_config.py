"""The Celery app and the apply-command task: serialisation, delivery and retry settings.

Eager mode runs the task in this process: it shows the retry policy, not a worker.
"""

from __future__ import annotations

from typing import Any

import pytest
from celery.exceptions import Reject

import tasks.commands
from schemas.events import ResultEvent
from worker.celery_app import APPLY_COMMAND_TASK, create_app
from worker.errors import ContentionExhausted, EventsUnavailable, StoreUnavailable
from worker.settings import Settings

TASK = tasks.commands.apply_command
COMMAND = {"command_id": "cmd-1", "type": "cancel_session", "session_id": "cs_1"}


@pytest.fixture
def settings() -> Settings:
    return Settings(redis_url="redis://127.0.0.1:6399/3", commands_queue="checkout.test")


@pytest.fixture
def conf(settings: Settings) -> Any:
    return create_app(settings).conf


def test_only_json_is_accepted_never_pickle(conf) -> None:
    assert (conf.task_serializer, conf.result_serializer) == ("json", "json")
    assert list(conf.accept_content) == ["json"]


def test_a_message_is_acked_after_its_task_and_redelivered_if_the_worker_dies(conf) -> None:
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1


def test_the_broker_and_queue_come_from_the_settings(conf, settings) -> None:
    assert conf.broker_url == settings.redis_url
    assert conf.task_default_queue == "checkout.test"
    assert conf.task_routes[APPLY_COMMAND_TASK] == {"queue": "checkout.test"}


def test_the_visibility_timeout_outlasts_the_longest_retry_countdown(conf) -> None:
    visibility = conf.broker_transport_options["visibility_timeout"]
    assert visibility > tasks.commands.RETRY_BACKOFF_MAX_SECONDS


def test_the_task_retries_without_limit() -> None:
    assert TASK.name == APPLY_COMMAND_TASK
    assert TASK.max_retries is None


class FlakyService:
    """Raises the given errors on the first calls, then returns a result event."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.retries_seen: list[int] = []
        self.deferrals: list[bool] = []

    def handle(self, command: dict[str, Any], *, defer_if_missing: bool) -> ResultEvent:
        self.retries_seen.append(TASK.request.retries)
        self.deferrals.append(defer_if_missing)
        if self.errors:
            raise self.errors.pop(0)
        return ResultEvent(
            event_id="event-1",
            type="session.canceled",
            command_id=command["command_id"],
            session_id=command["session_id"],
            version=2,
            occurred_at="2025-03-01T12:00:00.000Z",
        )


@pytest.fixture
def eager(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TASK.app.conf, "task_always_eager", True)
    monkeypatch.setitem(TASK.app.conf, "task_eager_propagates", False)


def run_with(monkeypatch: pytest.MonkeyPatch, service: FlakyService) -> Any:
    monkeypatch.setattr(tasks.commands, "get_service", lambda: service)
    return TASK.delay(COMMAND)


def test_a_transient_error_is_retried_until_the_command_applies(eager, monkeypatch) -> None:
    # More failures than Celery's default limit of 3 retries.
    errors = [StoreUnavailable("throttled"), EventsUnavailable("down"), ContentionExhausted("x")]
    service = FlakyService(*errors, *errors)
    result = run_with(monkeypatch, service)
    assert (result.state, result.get()) == ("SUCCESS", "event-1")
    assert service.retries_seen == [0, 1, 2, 3, 4, 5, 6]


def test_an_unexpected_error_is_logged_and_retried_not_dropped(eager, monkeypatch, caplog) -> None:
    service = FlakyService(ValueError("bug"))
    result = run_with(monkeypatch, service)
    assert (result.state, result.get()) == ("SUCCESS", "event-1")
    assert service.retries_seen == [0, 1]
    [failure] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "failed unexpectedly" in failure.getMessage() and failure.exc_info is not None


def test_task_messages_name_the_command_but_never_carry_its_body_in_argsrepr() -> None:
    from worker.celery_app import APPLY_COMMAND_TASK, create_app
    from worker.settings import Settings

    app = create_app(Settings())
    command = {
        "type": "update_session",
        "command_id": "cmd-7",
        "session_id": "s-1",
        "updates": {
            "buyer": {"email": "ann@example.com"},
            "payment_instruments": [{"id": "pi", "credential": {"token": "tok_secret"}}],
        },
    }

    message = app.amqp.create_task_message("task-1", APPLY_COMMAND_TASK, [command], {})

    assert message.headers["argsrepr"] == "('update_session' command 'cmd-7')"
    assert "tok_secret" not in str(message.headers)
    assert "ann@example.com" not in str(message.headers)
    assert message.body[0] == [command]  # the worker still gets the whole command


def test_a_missing_session_is_deferred_only_for_the_first_attempts(eager, monkeypatch) -> None:
    errors = [StoreUnavailable("down")] * 4
    service = FlakyService(*errors)
    run_with(monkeypatch, service)
    assert service.deferrals == [True, True, True, False, False]


def test_when_the_retry_cannot_be_enqueued_the_command_is_retried_in_place(monkeypatch) -> None:
    # Celery turns a failed retry publish into Reject(requeue=False), which acks the
    # message: the task must keep the command itself instead.
    service = FlakyService(EventsUnavailable("redis down"), EventsUnavailable("redis down"))
    monkeypatch.setattr(tasks.commands, "get_service", lambda: service)
    monkeypatch.setattr(tasks.commands.time, "sleep", lambda seconds: None)
    refused = []

    def retry(*args: Any, **kwargs: Any) -> None:
        refused.append(kwargs["exc"])
        raise Reject(kwargs["exc"], requeue=False)

    monkeypatch.setattr(TASK, "retry", retry)

    assert TASK.run(COMMAND) == "event-1"
    assert len(refused) == 2
    assert service.retries_seen == [0, 0, 0]
