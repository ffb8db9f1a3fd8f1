"""The Celery app and the apply-command task: serialisation, delivery and retry settings.

Eager mode runs the task in this process: it shows the retry policy, not a worker.
"""

from __future__ import annotations

from typing import Any

import pytest

import worker.runtime.tasks
from worker.runtime.app import APPLY_COMMAND_TASK, create_app
from worker.settings import Settings

TASK = worker.runtime.tasks.apply_command
COMMAND = {"command_id": "cmd-1", "type": "cancel_session", "session_id": "cs_1"}


@pytest.fixture
def settings() -> Settings:
    return Settings(redis_url="redis://127.0.0.1:6399/3", commands_queue="checkout.test")


@pytest.fixture
def conf(settings: Settings) -> Any:
    return create_app(settings).conf


def test_only_json_is_accepted_never_pickle(conf) -> None:
    assert (conf.task_serializer, conf.result_serializer) == ("json", "json")
    assert list(conf.accept_content) == ["json", "checkout-json"]  # both plain JSON, no pickle


def test_a_message_is_acked_after_its_task_and_redelivered_if_the_worker_dies(conf) -> None:
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1


def test_the_broker_and_queue_come_from_the_settings(conf, settings) -> None:
    assert conf.broker_url == settings.redis_url
    assert conf.task_default_queue == "checkout.test"
    assert conf.task_routes[APPLY_COMMAND_TASK] == {"queue": "checkout.test"}


def test_failed_tasks_stay_unacked_and_undecodable_messages_are_dead_lettered(conf) -> None:
    # The task raises only when Redis refuses the journal: the message must survive.
    assert conf.task_acks_on_failure_or_timeout is False
    assert conf.worker_consumer == "worker.runtime.consumer:DeadLetteringConsumer"
    assert conf.broker_transport == "worker.runtime.transport:Transport"


def test_workers_take_queues_in_priority_order_interactive_first(conf, settings) -> None:
    from worker.runtime.app import worker_queues

    assert conf.broker_transport_options["queue_order_strategy"] == "priority"
    assert worker_queues(settings) == [settings.commands_queue, settings.bulk_queue]


def test_rediss_urls_get_tls_with_the_requested_certificate_check() -> None:
    import ssl

    url = "rediss://:secret@127.0.0.1:6380/0?ssl_cert_reqs=none"
    conf = create_app(Settings(redis_url=url)).conf
    assert conf.broker_use_ssl == {"ssl_cert_reqs": ssl.CERT_NONE}


def test_task_messages_name_the_command_but_never_carry_its_body_in_argsrepr() -> None:
    from worker.runtime.app import APPLY_COMMAND_TASK, create_app
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

    assert message.headers["argsrepr"] == "(command cmd-7)"  # what pipeline.lua writes
    assert message.headers["kwargsrepr"] == "{}"
    assert "tok_secret" not in str(message.headers)
    assert "ann@example.com" not in str(message.headers)
    assert message.body[0] == [command]  # the worker still gets the whole command


def test_a_batched_message_counts_its_commands_in_argsrepr_and_may_run_longer() -> None:
    from worker.delivery.journal import MAX_COMMANDS_PER_MESSAGE
    from worker.runtime.app import APPLY_COMMANDS_TASK

    settings = Settings(commands_queue="checkout.test")
    app = create_app(settings)
    commands = [{**COMMAND, "command_id": f"cmd-{n}", "credential": "tok_secret"} for n in range(3)]

    message = app.amqp.create_task_message("task-2", APPLY_COMMANDS_TASK, [commands, []], {})

    assert message.headers["argsrepr"] == "(3 commands)"
    assert "tok_secret" not in str(message.headers) and "cmd-1" not in str(message.headers)
    assert app.conf.task_routes[APPLY_COMMANDS_TASK] == {"queue": "checkout.test"}
    # Celery's time limit is per message: a batched one gets as many commands' worth.
    annotated = app.conf.task_annotations[APPLY_COMMANDS_TASK]["time_limit"]
    assert annotated == app.conf.task_time_limit * MAX_COMMANDS_PER_MESSAGE


@pytest.mark.parametrize(("pool", "has_own_limit"), [("prefork", False), ("solo", True)])
def test_a_command_has_a_time_limit_of_its_own_only_where_celery_enforces_none(
    monkeypatch, pool: str, has_own_limit: bool
) -> None:
    """Celery kills a prefork pool process past `task_time_limit`; its solo pool enforces
    no limit, so there each command gets the watchdog's, as long."""
    from worker.settings import get_settings

    monkeypatch.setenv("CHECKOUT_WORKER_POOL", pool)
    get_settings.cache_clear()
    try:
        limit = worker.runtime.tasks._own_time_limit()
        expected = get_settings().command_time_limit if has_own_limit else 0
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert limit == expected
    assert (limit > 0) is has_own_limit
