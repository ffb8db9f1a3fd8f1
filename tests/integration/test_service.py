"""CheckoutService over the real store and stream: expiry and idempotency."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from schemas import command_fingerprint, event_id_for, parse_command
from tests.integration.helpers import (
    cancel,
    complete,
    count_sessions,
    create,
    expire,
    full_updates,
    new_id,
    raw_command,
    raw_session,
    stream_entries,
    transition,
    update,
)
from worker.service import CheckoutService

WEEK = 7 * 24 * 60 * 60


def published(redis_client, settings) -> list[str]:
    return [fields["event"] for _, fields in stream_entries(redis_client, settings)]


# ─── Expiry ───


@pytest.mark.parametrize(
    "command",
    [
        lambda sid: update(sid, buyer={"email": "late@example.com"}),
        lambda sid: transition(sid, "ready_for_complete"),
        complete,
        cancel,
    ],
    ids=["update", "transition", "complete", "cancel"],
)
def test_commands_on_an_expired_session_are_rejected(service, dynamodb, tables, command):
    session_id = new_id("s")
    service.handle(create(session_id))
    service.handle(update(session_id, **full_updates()))
    expire(dynamodb, tables, session_id)
    before = raw_session(dynamodb, tables, session_id)

    event = service.handle(command(session_id))

    assert event.type == "command.rejected"
    assert event.error.code == "session_expired"
    assert event.version is None
    assert raw_session(dynamodb, tables, session_id) == before


def test_create_replaces_an_expired_session(service, store, dynamodb, tables):
    session_id = new_id("s")
    service.handle(create(session_id))
    service.handle(update(session_id, **full_updates()))
    expire(dynamodb, tables, session_id)

    event = service.handle(create(session_id))

    item = raw_session(dynamodb, tables, session_id)
    assert event.type == "session.created"
    assert item["version"] == {"N": "1"}
    assert item["line_items"] == {"L": []}
    assert "buyer" not in item
    assert int(item["ttl"]["N"]) > time.time() + 86400 - 10
    assert store.load(session_id).expired is False


def test_create_over_a_live_session_is_a_version_conflict(service, dynamodb, tables):
    session_id = new_id("s")
    service.handle(create(session_id))
    before = raw_session(dynamodb, tables, session_id)

    event = service.handle(create(session_id))

    assert (event.type, event.error.code, event.version) == (
        "command.rejected",
        "version_conflict",
        1,
    )
    assert raw_session(dynamodb, tables, session_id) == before


def test_commands_on_a_closed_session_are_rejected(service, dynamodb, tables):
    session_id = new_id("s")
    service.handle(create(session_id))
    service.handle(cancel(session_id))
    before = raw_session(dynamodb, tables, session_id)

    events = [
        service.handle(update(session_id, buyer={"email": "a@x"})),
        service.handle(cancel(session_id)),
    ]

    assert [(e.type, e.error.code, e.version) for e in events] == [
        ("command.rejected", "session_closed", 2)
    ] * 2
    assert raw_session(dynamodb, tables, session_id) == before


# ─── Idempotency ───


def test_a_command_handled_three_times_has_one_effect(service, dynamodb, tables, redis_client):
    session_id = new_id("s")
    service.handle(create(session_id))
    command = update(session_id, buyer={"email": "ada@example.com"})

    events = [service.handle(command) for _ in range(3)]

    item = raw_session(dynamodb, tables, session_id)
    assert item["version"] == {"N": "2"}
    stream = published(redis_client, tables)
    assert len(stream) == 4
    assert stream[1] == stream[2] == stream[3]
    parsed = command_fingerprint(parse_command(command))
    assert {event.event_id for event in events} == {event_id_for(command["command_id"], parsed)}
    assert json.loads(stream[3])["version"] == 2


def test_the_same_command_delivered_concurrently_applies_once(
    service, dynamodb, tables, redis_client
):
    session_id = new_id("s")
    service.handle(create(session_id))
    command = update(session_id, buyer={"email": "ada@example.com"})
    both_loaded = threading.Barrier(2)

    class LoadTogether:
        """Each delivery waits after its first load until the other has loaded too."""

        def __init__(self, store):
            self.store, self.local = store, threading.local()

        def load(self, session_id):
            snapshot = self.store.load(session_id)
            if not getattr(self.local, "loaded", False):
                self.local.loaded = True
                both_loaded.wait(timeout=10)
            return snapshot

        def save(self, *args, **kwargs):
            return self.store.save(*args, **kwargs)

    racing = CheckoutService(LoadTogether(service._store), service._publisher)

    def deliver(_):
        return racing.handle(command)

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(deliver, range(2))

    assert first == second
    assert raw_session(dynamodb, tables, session_id)["version"] == {"N": "2"}
    stream = published(redis_client, tables)
    assert stream[1] == stream[2]


def test_command_id_reused_with_another_body_is_a_conflict(service, dynamodb, tables):
    session_id = new_id("s")
    service.handle(create(session_id))
    first = update(session_id, buyer={"email": "one@example.com"})
    service.handle(first)
    before = raw_session(dynamodb, tables, session_id)

    event = service.handle({**first, "updates": {"buyer": {"email": "two@example.com"}}})

    assert event.type == "command.rejected"
    assert event.error.code == "idempotency_conflict"
    assert event.command_id == first["command_id"]
    assert raw_session(dynamodb, tables, session_id) == before


def test_command_id_reused_on_another_session_is_a_conflict(service, dynamodb, tables):
    one, two = new_id("s"), new_id("s")
    service.handle(create(one))
    service.handle(create(two))
    first = update(one, buyer={"email": "same@example.com"})
    service.handle(first)
    before = raw_session(dynamodb, tables, two)

    event = service.handle({**first, "session_id": two})

    assert event.error.code == "idempotency_conflict"
    assert raw_session(dynamodb, tables, two) == before


def test_a_redelivered_rejection_is_replayed_after_the_session_changed(
    service, dynamodb, tables, redis_client
):
    session_id = new_id("s")
    service.handle(create(session_id))
    service.handle(update(session_id, **full_updates()))  # ready_for_complete: no transitions
    command = transition(session_id, "requires_escalation")
    rejected = service.handle(command)
    service.handle(update(session_id, line_items=[]))  # incomplete: now the transition is legal

    replayed = service.handle(command)

    assert rejected.error.code == "invalid_transition"
    assert replayed == rejected
    stream = published(redis_client, tables)
    assert stream[-1] == stream[-3]
    item = raw_session(dynamodb, tables, session_id)
    assert item["status"] == {"S": "incomplete"}
    assert item["version"] == {"N": "3"}


def test_the_command_record_is_kept_for_a_week(service, dynamodb, tables, redis_client):
    session_id = new_id("s")
    command = create(session_id)
    service.handle(command)

    record = raw_command(dynamodb, tables, command["command_id"])

    assert record["commandId"] == {"S": command["command_id"]}
    assert record["sessionId"] == {"S": session_id}
    assert record["fingerprint"] == {"S": command_fingerprint(parse_command(command))}
    assert record["event"] == {"S": published(redis_client, tables)[0]}
    assert int(record["ttl"]["N"]) >= time.time() + WEEK - 10


def test_a_rejection_is_recorded_too(service, dynamodb, tables, redis_client):
    command = complete(new_id("absent"))

    event = service.handle(command)

    assert event.error.code == "session_not_found"
    record = raw_command(dynamodb, tables, command["command_id"])
    assert record["event"] == {"S": published(redis_client, tables)[0]}


def test_create_without_session_id_delivered_twice_creates_one_session(
    service, dynamodb, tables, redis_client
):
    command = create(None)

    first = service.handle(command)
    second = service.handle(command)

    assert count_sessions(dynamodb, tables) == 1
    assert first.session_id == second.session_id
    assert raw_session(dynamodb, tables, first.session_id)["version"] == {"N": "1"}
    stream = published(redis_client, tables)
    assert len(stream) == 2
    assert stream[0] == stream[1]


def test_an_update_too_large_for_one_item_is_rejected_and_recorded(service, dynamodb, tables):
    session_id = new_id("s")
    service.handle(create(session_id))
    title = "x" * 200
    line_items = [{"type": "product", "total_amount": 1, "title": title} for _ in range(2500)]
    oversized = update(session_id, line_items=line_items)

    first, again = service.handle(oversized), service.handle(oversized)

    assert first.error.code == "validation_error"
    assert "400 KB" in first.error.message
    assert again == first  # recorded: the redelivery replays the same rejection
    assert raw_session(dynamodb, tables, session_id)["version"] == {"N": "1"}
