"""The Redis side: the result-event stream and the Celery queue producers write to."""

from __future__ import annotations

import base64
import json

import pytest

from schemas import command_fingerprint, event_id_for, parse_command
from tasks.embedded.stack import free_port
from tasks.producer import CommandProducer, InvalidCommand
from tests.integration.helpers import (
    create,
    full_updates,
    new_id,
    raw_session,
    stream_entries,
    transition,
    update,
)
from tests.support.publishing import RedisEventPublisher
from worker.errors import EventsUnavailable
from worker.redis_client import make_redis_client
from worker.runtime.app import APPLY_COMMAND_TASK
from worker.streams.reader import read_events

APPLIED_KEYS = {
    "event_id", "type", "command_id", "session_id", "version", "occurred_at", "session",
    "previous_status",
}  # fmt: skip
REJECTED_KEYS = {
    "event_id", "type", "command_id", "session_id", "version", "occurred_at", "error",
}  # fmt: skip


# ─── Events ───


def handle_all(service, *commands):
    return [service.handle(command) for command in commands]


def test_each_command_appends_one_entry_holding_its_event(service, redis_client, tables):
    session_id = new_id("s")
    commands = [
        create(session_id),
        update(session_id, **full_updates()),
        transition(session_id, "incomplete"),
    ]

    handle_all(service, *commands)

    entries = stream_entries(redis_client, tables)
    assert [set(fields) for _, fields in entries] == [{"event"}] * 3
    created, updated, rejected = (json.loads(fields["event"]) for _, fields in entries)
    for event, command in zip((created, updated, rejected), commands, strict=True):
        fingerprint = command_fingerprint(parse_command(command))
        assert event["event_id"] == event_id_for(command["command_id"], fingerprint)
        assert event["command_id"] == command["command_id"]
        assert event["session_id"] == session_id
    assert set(created) == APPLIED_KEYS
    assert (created["type"], created["version"], created["previous_status"]) == (
        "session.created",
        1,
        None,
    )
    assert created["session"]["id"] == session_id
    assert set(updated) == APPLIED_KEYS
    assert (updated["type"], updated["version"], updated["previous_status"]) == (
        "session.updated",
        2,
        "incomplete",
    )
    assert updated["session"]["status"] == "ready_for_complete"
    assert updated["session"]["totals"]["total"] == 2413
    assert set(rejected) == REJECTED_KEYS
    assert (rejected["type"], rejected["version"]) == ("command.rejected", 2)
    assert rejected["error"] == {
        "code": "invalid_transition",
        "message": "Invalid transition: ready_for_complete → incomplete. Allowed: ",
    }


def test_payment_credentials_are_redacted_in_events_only(service, redis_client, dynamodb, tables):
    session_id = new_id("s")
    command = update(session_id, **full_updates())

    handle_all(service, create(session_id), command)

    event = json.loads(stream_entries(redis_client, tables)[-1][1]["event"])
    assert event["session"]["payment_instruments"] == [
        {"id": "pi_1", "type": "card", "credential": "[redacted]"}
    ]
    assert not any(
        "tok_secret" in fields["event"] for _, fields in stream_entries(redis_client, tables)
    )
    item = raw_session(dynamodb, tables, session_id)
    stored = item["payment_instruments"]["L"][0]["M"]
    assert stored["credential"]["M"]["token"] == {"S": "tok_secret"}
    # The session item is the only thing stored; its ledger holds digests, not events.
    assert "tok_secret" not in json.dumps(item["applied_commands"])
    assert command["command_id"] not in json.dumps(item["applied_commands"])


def test_read_events_reads_the_stream_back_in_order(service, redis_client, tables):
    session_id = new_id("s")
    events = handle_all(
        service, create(session_id), update(session_id, buyer={"email": "a@x"}), create(session_id)
    )

    read = list(read_events(redis_client, tables.events_stream))

    assert [json.loads(text)["event_id"] for _, text in read] == [e.event_id for e in events]
    assert [entry_id for entry_id, _ in read] == [
        i for i, _ in stream_entries(redis_client, tables)
    ]
    after_first = list(read_events(redis_client, tables.events_stream, after=read[0][0]))
    assert after_first == read[1:]


def test_publishing_to_an_unreachable_redis_is_events_unavailable():
    client = make_redis_client(f"redis://127.0.0.1:{free_port()}/0")
    publisher = RedisEventPublisher(client, stream="checkout:events:nowhere", maxlen=1000)

    with pytest.raises(EventsUnavailable):
        publisher.publish('{"event_id": "x"}')


# ─── Producer ───


@pytest.fixture
def producer(settings):
    return CommandProducer.from_settings(settings)


def queued_commands(redis_client, queue: str) -> list[dict]:
    """Each message on the queue's list, checked to be a JSON Celery message, as its command."""
    commands = []
    for raw in redis_client.lrange(queue, 0, -1):
        message = json.loads(raw)
        assert message["content-type"] == "application/vnd.checkout.command+json"
        assert message["headers"]["task"] == APPLY_COMMAND_TASK
        body = message["body"]
        if message["properties"].get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args, kwargs, _embed = json.loads(body)
        assert set(kwargs) == {"jid"}  # the journal entry this delivery belongs to
        assert len(args) == 1
        commands.append(args[0])
    return commands


def test_enqueue_sends_a_json_celery_message(producer, redis_client, settings):
    command = update(new_id("s"), buyer={"email": "ada@example.com"})

    assert producer.enqueue(command) == command["command_id"]

    # kombu LPUSHes and workers BRPOP: the oldest message is at the right end.
    assert queued_commands(redis_client, settings.commands_queue) == [command]


def test_enqueue_many_sends_all_in_order(producer, redis_client, settings):
    commands = [create(new_id("s")) for _ in range(3)]

    assert producer.enqueue_many(commands) == 3

    assert queued_commands(redis_client, settings.commands_queue)[::-1] == commands


def test_enqueue_many_with_one_invalid_command_enqueues_nothing(producer, redis_client, settings):
    producer.enqueue(create(new_id("s")))
    bad = update(new_id("s"), line_items=[{"type": "product", "total_amount": "12.50"}])
    batch = [create(new_id("s")), bad, create(new_id("s"))]

    with pytest.raises(InvalidCommand) as invalid:
        producer.enqueue_many(batch)

    assert str(invalid.value).startswith("command 1: ")
    assert "updates.line_items.0.total_amount" in str(invalid.value)
    assert redis_client.llen(settings.commands_queue) == 1
