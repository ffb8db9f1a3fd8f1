"""CheckoutService over the real store and stream: expiry and idempotency."""

from __future__ import annotations

import json
import re
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
    ledger_holds,
    new_id,
    raw_ledger,
    raw_session,
    stream_entries,
    transition,
    update,
)
from tests.support.publishing import PublishingService
from worker.domain.ledger import LEDGER_SIZE, ledger_entry

DAY = 24 * 60 * 60


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

    racing = PublishingService(LoadTogether(service._store), service._publisher)

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


def test_command_id_reused_on_another_session_applies_there(service, dynamodb, tables):
    # Each session has its own ledger (worker/domain/ledger.py): a command id reused on another
    # session is not detected. It applies there; the first session is left alone.
    one, two = new_id("s"), new_id("s")
    service.handle(create(one))
    service.handle(create(two))
    first = update(one, buyer={"email": "same@example.com"})
    service.handle(first)
    before = raw_session(dynamodb, tables, one)
    reused = {**first, "session_id": two}

    event = service.handle(reused)

    assert (event.type, event.session_id, event.version) == ("session.updated", two, 2)
    assert raw_session(dynamodb, tables, one) == before
    item = raw_session(dynamodb, tables, two)
    assert item["buyer"] == {"M": {"email": {"S": "same@example.com"}}}
    assert ledger_holds(raw_ledger(dynamodb, tables, two), reused)


def test_a_redelivered_rejection_is_decided_again_after_the_session_changed(
    service, dynamodb, tables, redis_client
):
    # Rejections are not recorded: a redelivery (the journal normally skips it once the
    # rejection is published) decides on the session as it is by then.
    session_id = new_id("s")
    service.handle(create(session_id))
    service.handle(update(session_id, **full_updates()))  # ready_for_complete: no transitions
    command = transition(session_id, "requires_escalation")
    rejected = service.handle(command)
    service.handle(update(session_id, line_items=[]))  # incomplete: now the transition is legal

    redelivered = service.handle(command)

    assert rejected.error.code == "invalid_transition"
    assert (redelivered.type, redelivered.version) == ("session.status_changed", 4)
    assert redelivered.previous_status == "incomplete"
    assert redelivered.event_id == rejected.event_id
    item = raw_session(dynamodb, tables, session_id)
    assert item["status"] == {"S": "requires_escalation"}
    assert item["version"] == {"N": "4"}
    assert ledger_holds(raw_ledger(dynamodb, tables, session_id), command)


def test_the_ledger_entry_is_written_with_the_session(service, dynamodb, tables):
    session_id = new_id("s")
    command = create(session_id)
    service.handle(command)

    item = raw_session(dynamodb, tables, session_id)

    fingerprint = command_fingerprint(parse_command(command))
    written_at = item["updated_at"]["S"]  # the newest entry carries a digest of it
    assert item["applied_commands"] == {
        "L": [{"S": ledger_entry(command["command_id"], fingerprint, None, written_at=written_at)}]
    }
    assert int(item["ttl"]["N"]) >= time.time() + DAY - 10  # the session's own TTL


def test_a_rejection_writes_nothing(service, dynamodb, tables, redis_client):
    absent, session_id = new_id("absent"), new_id("s")
    service.handle(create(session_id))
    before = raw_session(dynamodb, tables, session_id)

    missing = service.handle(complete(absent))
    refused = service.handle(complete(session_id))  # incomplete: cannot complete

    assert missing.error.code == "session_not_found"
    assert refused.error.code == "invalid_transition"
    assert raw_session(dynamodb, tables, absent) is None
    assert raw_session(dynamodb, tables, session_id) == before  # applied_commands too
    assert count_sessions(dynamodb, tables) == 1


def test_a_replay_after_later_commands_is_already_applied(service, dynamodb, tables, redis_client):
    session_id = new_id("s")
    service.handle(create(session_id))
    command = update(session_id, buyer={"email": "ada@example.com"})
    first = service.handle(command)
    service.handle(update(session_id, line_items=full_updates()["line_items"]))
    before = raw_session(dynamodb, tables, session_id)

    again = service.handle(command)

    assert (again.type, again.error.code) == ("command.rejected", "already_applied")
    assert again.event_id == first.event_id
    assert again.version == 3
    assert raw_session(dynamodb, tables, session_id) == before
    assert json.loads(published(redis_client, tables)[-1]) == json.loads(again.to_json())


def test_the_ledger_keeps_the_last_commands_only(service, dynamodb, tables):
    session_id = new_id("s")
    service.handle(create(session_id))
    commands = [update(session_id, buyer={"email": f"n{n}@example.com"}) for n in range(10)]

    for command in commands:
        assert service.handle(command).type == "session.updated"

    ledger = raw_ledger(dynamodb, tables, session_id)
    assert len(ledger) == LEDGER_SIZE == 8
    assert [ledger_holds(ledger, command) for command in commands] == [False] * 2 + [True] * 8
    assert [entry.count(":") for entry in ledger] == [1] * 7 + [3]
    assert re.search(r":incomplete:[0-9a-f]{6}$", ledger[-1])
    assert raw_session(dynamodb, tables, session_id)["version"] == {"N": "11"}


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


def test_an_update_too_large_for_one_item_is_rejected_on_each_delivery(service, dynamodb, tables):
    session_id = new_id("s")
    service.handle(create(session_id))
    title = "x" * 200
    line_items = [{"type": "product", "total_amount": 1, "title": title} for _ in range(2500)]
    oversized = update(session_id, line_items=line_items)

    first, again = service.handle(oversized), service.handle(oversized)

    assert first.error.code == "validation_error"
    assert "400 KB" in first.error.message
    # Not recorded: the redelivery tries again and is refused again, the same way.
    assert (again.event_id, again.error, again.version) == (
        first.event_id,
        first.error,
        first.version,
    )
    assert raw_session(dynamodb, tables, session_id)["version"] == {"N": "1"}
    assert len(raw_ledger(dynamodb, tables, session_id)) == 1
