"""`DeadLetterStore` reading, replaying and purging what the journal script set aside."""

from __future__ import annotations

import json
import re

import pytest

from worker.delivery.deadletters import DeadLetterStore
from worker.delivery.journal import DeadLetter, Journal, Pending
from worker.redis_client import make_redis_client

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
REASON = DeadLetter("handler_failed", "KeyError", "'line_items'")


@pytest.fixture
def journal(settings):
    client = make_redis_client(settings.redis_url)
    yield Journal(client, settings)
    client.close()


@pytest.fixture
def store(journal) -> DeadLetterStore:
    return DeadLetterStore(journal.client, journal.keys, journal)


def dead_letter(journal: Journal, queue: str, command_id: str) -> tuple[str, dict]:
    """A command enqueued, claimed and dead-lettered; returns its entry id and command."""
    command = {"type": "create_session", "command_id": command_id, "session_id": f"s-{command_id}"}
    pending = Pending(json.dumps(command), command_id, command["session_id"])
    ((jid,),) = journal.enqueue([[pending]], queue=queue)
    journal.claim(jid, "w1")
    journal.finish(jid, "w1", event_json="{}", outcome="dead_lettered", dead_letter=REASON)
    return jid, command


def test_entries_are_listed_oldest_first_with_their_command_and_error(journal, store, settings):
    first, command = dead_letter(journal, settings.commands_queue, "c-1")
    second, _ = dead_letter(journal, settings.commands_queue, "c-2")

    entries = store.list()

    assert [e.id for e in entries] == [first, second] and store.count() == 2
    assert [e.id for e in store.list(limit=1)] == [first]
    entry = entries[0]
    assert (entry.command, entry.raw, entry.queue) == (command, None, settings.commands_queue)
    assert (entry.command_id, entry.session_id) == ("c-1", "s-c-1")
    assert entry.error == {"code": "handler_failed", "type": "KeyError", "message": "'line_items'"}
    assert (entry.attempts, entry.deliveries) == (0, 1)
    for stamp in (entry.first_failure_at, entry.last_failure_at, entry.dead_lettered_at):
        assert ISO.match(stamp)
    assert json.loads(entry.to_json())["command"] == command


def test_an_entry_is_found_by_its_id_or_its_command_id(journal, store, settings):
    jid, _ = dead_letter(journal, settings.commands_queue, "c-find")

    assert store.get(jid).command_id == "c-find"
    assert store.get("c-find").id == jid
    assert store.get("c-unknown") is None


def test_a_raw_message_is_kept_as_it_came(journal, store, settings):
    journal.bury(
        "raw-1", queue=settings.commands_queue, raw="\x01junk", event_json="{}", dead_letter=REASON
    )

    (entry,) = store.list()
    assert (entry.raw, entry.command, entry.command_id) == ("\x01junk", None, None)
    assert store.replay("raw-1") == "raw" and store.count() == 1


def test_replay_all_re_enqueues_each_command_once(journal, store, settings, redis_client):
    ids = [dead_letter(journal, settings.commands_queue, f"c-{n}")[0] for n in range(3)]
    queued = redis_client.llen(settings.commands_queue)

    results = store.replay_all()

    assert sorted(results) == sorted(ids) and "" not in results.values()
    assert redis_client.llen(settings.commands_queue) == queued + 3
    assert store.count() == 0 and store.replay_all() == {}


def test_purge_removes_one_entry_or_all(journal, store, settings):
    ids = [dead_letter(journal, settings.commands_queue, f"c-{n}")[0] for n in range(3)]

    assert store.purge(ids[0]) is True
    assert store.purge(ids[0]) is False
    assert [e.id for e in store.list()] == ids[1:]
    assert store.purge_all() == 2
    assert store.count() == 0 and store.list() == []
