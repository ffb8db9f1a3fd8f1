"""Poison messages: whatever lands on the commands queue, the worker dead-letters it and
goes on with the next command.

Each case puts one bad message on the queue of a running worker, waits for its
`command.dead_lettered` event and its dead-letter entry, then sends a normal command
and sees it applied by the same worker process.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from celery import Celery

from tests.faults.checker import read_events
from tests.faults.conftest import wait_for
from tests.faults.fault_proxy import FaultProxy
from worker.delivery.journal import in_flight_count
from worker.delivery.keys import RedisKeys
from worker.runtime.app import APPLY_COMMAND_TASK

DEAD = "command.dead_lettered"
# Stands for buyer data inside a poison message: it must not reach the worker's log.
SECRET = "buyer-poison@example.com"


@pytest.fixture
def proxy(fault_env: dict[str, str]) -> Iterator[FaultProxy]:
    """DynamoDB behind a fault proxy: workers started after this talk to it."""
    with FaultProxy(fault_env["CHECKOUT_DYNAMODB_ENDPOINT_URL"]) as running:
        fault_env["CHECKOUT_DYNAMODB_ENDPOINT_URL"] = running.url
        yield running


@pytest.fixture
def worker(proxy, workers):
    return workers.start(concurrency=2)


def _dead_letters(redis_client, settings) -> list[dict[str, str]]:
    keys = RedisKeys(settings.key_prefix)
    ids = redis_client.zrange(keys.dead_letters, 0, -1)
    return [redis_client.hgetall(keys.dead_letter(entry_id)) for entry_id in ids]


def _wait_dead_lettered(redis_client, settings, *, command_id: str | None = None) -> dict:
    """The one `command.dead_lettered` event of this test (of `command_id`, if given)."""

    def found():
        dead = [e for e in read_events(redis_client, settings.events_stream) if e["type"] == DEAD]
        return [e for e in dead if command_id is None or e["command_id"] == command_id]

    events = wait_for(found, what=f"a {DEAD} event")
    assert len(events) == 1, events
    return events[0]


def _assert_still_serving(worker, producer, redis_client, settings) -> None:
    """The same worker process applies a normal command sent after the poison."""
    command_id = f"after-{uuid.uuid4().hex[:8]}"
    producer.enqueue({"type": "create_session", "command_id": command_id})
    wait_for(
        lambda: [
            e
            for e in read_events(redis_client, settings.events_stream)
            if e["command_id"] == command_id and e["type"] == "session.created"
        ],
        what=f"{command_id} applied after the poison message",
    )
    assert worker.process.poll() is None, "the worker exited"
    assert SECRET not in worker.log.read_text(errors="replace")


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"\xff\xfenot json at all " + SECRET.encode(), id="non-json-bytes"),
        pytest.param(json.dumps({"hello": 1, "email": SECRET}).encode(), id="json-not-kombu"),
    ],
)
def test_raw_item_on_the_queue_is_dead_lettered_and_the_worker_goes_on(
    raw, worker, producer, redis_client, settings
):
    redis_client.lpush(settings.commands_queue, raw)

    event = _wait_dead_lettered(redis_client, settings)
    assert event["error"]["code"] == "undeliverable"
    assert event["command_id"] is None
    [entry] = _dead_letters(redis_client, settings)
    assert entry["code"] == "undeliverable"
    assert entry["raw"] == raw.decode("utf-8", "replace")
    _assert_still_serving(worker, producer, redis_client, settings)


def test_celery_message_for_an_unknown_task_is_dead_lettered(
    worker, producer, redis_client, settings
):
    command = {"type": "create_session", "command_id": "unknown-task-1", "buyer": SECRET}
    sender = Celery(broker=settings.redis_url)
    try:
        sender.send_task("no.such.task", args=[command], queue=settings.commands_queue)
    finally:
        sender.close()

    event = _wait_dead_lettered(redis_client, settings)
    assert event["error"]["code"] == "undeliverable"
    assert "no.such.task" in event["error"]["message"]
    assert event["command_id"] == "unknown-task-1"
    [entry] = _dead_letters(redis_client, settings)
    assert "no.such.task" in entry["raw"]
    _assert_still_serving(worker, producer, redis_client, settings)


@pytest.mark.parametrize("task", ["celery.map", "celery.starmap", "celery.chord_unlock"])
def test_celerys_built_in_tasks_do_not_run_from_the_checkout_queues(
    task, worker, producer, redis_client, settings
):
    command = {"type": "create_session", "command_id": f"builtin-{task}"}
    sender = Celery(broker=settings.redis_url)
    try:
        sender.send_task(
            task, args=[{"task": APPLY_COMMAND_TASK}, [[command]]], queue=settings.commands_queue
        )
    finally:
        sender.close()

    event = _wait_dead_lettered(redis_client, settings)
    assert event["error"]["code"] == "undeliverable"
    assert f"unknown task {task!r}" in event["error"]["message"]
    _assert_still_serving(worker, producer, redis_client, settings)
    # What celery.map would have run never ran.
    assert not [
        e
        for e in read_events(redis_client, settings.events_stream)
        if e["command_id"] == command["command_id"] and e["type"] != DEAD
    ]


def test_a_time_limit_in_a_message_header_is_ignored(worker, producer, redis_client, settings):
    """Limits come from settings: a forged 1 ms hard limit would kill the pool process
    applying the command on every delivery until it was dead-lettered worker_lost."""
    command = {"type": "create_session", "command_id": f"limit-{uuid.uuid4().hex[:8]}"}
    sender = Celery(broker=settings.redis_url)
    try:
        sender.send_task(
            APPLY_COMMAND_TASK,
            args=[command],
            queue=settings.commands_queue,
            time_limit=0.001,
            soft_time_limit=0.001,
        )
    finally:
        sender.close()

    def results():
        return [
            e
            for e in read_events(redis_client, settings.events_stream)
            if e["command_id"] == command["command_id"]
        ]

    (event,) = wait_for(results, what="the command's result")
    assert event["type"] == "session.created"
    assert "time limit" not in worker.log.read_text(errors="replace").lower()
    _assert_still_serving(worker, producer, redis_client, settings)


def test_command_whose_handling_fails_every_time_is_dead_lettered_after_the_retries(
    proxy, worker, producer, redis_client, settings
):
    session_id = f"poison-{uuid.uuid4().hex[:8]}"
    proxy.garbage_for(session_id)  # every DynamoDB answer about it is unparseable
    producer.enqueue(
        {"type": "create_session", "command_id": "poisoned-1", "session_id": session_id}
    )

    event = _wait_dead_lettered(redis_client, settings, command_id="poisoned-1")
    assert event["error"]["code"] == "handler_failed"
    assert event["session_id"] == session_id
    [entry] = _dead_letters(redis_client, settings)
    assert entry["cid"] == "poisoned-1"
    assert int(entry["attempts"]) == settings.max_retries + 1
    assert json.loads(entry["cmd"])["session_id"] == session_id
    print(f"poison handler: garbled DynamoDB answers={proxy.counts['garbled']}, entry={entry}")
    _assert_still_serving(worker, producer, redis_client, settings)


@pytest.mark.parametrize("damage", ["content-type", "body"])
def test_a_journaled_message_nobody_can_decode_is_dead_lettered_once_and_its_session_goes_on(
    workers, producer, redis_client, settings, damage
):
    """The delivery script's message of a command arrives in a form no task can take (a
    content type the worker refuses, or a body that is not JSON). Its journal entry is
    finished as dead-lettered: one event, one replayable entry holding the command,
    nothing left for the reaper to deliver again, and the session's next command runs."""
    session_id = f"s-{uuid.uuid4().hex[:8]}"
    producer.enqueue({"type": "create_session", "command_id": "c-0", "session_id": session_id})
    victim = {"type": "update_session", "command_id": "victim", "session_id": session_id}
    producer.enqueue({**victim, "updates": {"currency": "EUR"}})
    producer.enqueue(
        {
            "type": "update_session",
            "command_id": "after",
            "session_id": session_id,
            "updates": {"currency": "JPY"},
        }
    )
    queue = settings.commands_queue
    raw = [json.loads(item) for item in redis_client.lrange(queue, 0, -1)]
    (message,) = [m for m in raw if "victim" in m["body"]]
    index = raw.index(message)
    if damage == "content-type":
        message["content-type"] = "application/x-python-serialize"  # pickle: refused
    else:
        message["body"] = message["body"][:-3] + '"{}'  # the command text intact, not JSON
    redis_client.lset(queue, index, json.dumps(message))

    workers.start(concurrency=2)
    dead = _wait_dead_lettered(redis_client, settings, command_id="victim")

    assert dead["session_id"] == session_id
    applied = wait_for(
        lambda: [
            e
            for e in read_events(redis_client, settings.events_stream)
            if e["command_id"] == "after"
        ],
        what="the session's next command",
    )
    assert applied[0]["type"] == "session.updated"
    (entry,) = _dead_letters(redis_client, settings)
    assert json.loads(entry["cmd"])["command_id"] == "victim"  # replayable: the command
    assert in_flight_count(redis_client, RedisKeys(settings.key_prefix)) == 0  # nothing to redo
