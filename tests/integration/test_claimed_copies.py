"""Session copies that travel with claim and finish: the store's GET and SET of
`c:<session>` become part of the journal's own two calls (pipeline.lua)."""

from __future__ import annotations

import json

import pytest

from tests.integration.test_journal import command, enqueue, finish, take
from worker.delivery.session_copies import ClaimedSessionCopies, copy_text


@pytest.fixture
def copies(journal) -> ClaimedSessionCopies:
    return ClaimedSessionCopies(journal.client, journal.keys, ttl=300)


def test_finish_keeps_the_copy_its_successors_claim_reads(journal, redis_client, settings):
    queue = settings.commands_queue
    first, second = enqueue(journal, queue, command("s-cc"), command("s-cc"))
    take(redis_client, queue, 2)
    assert journal.claim(first, "w-1", with_copy=True).session_copy is None  # none kept yet

    assert finish(journal, first, "w-1", session_copy=("s-cc", '{"v": 1}', 300))
    claim = journal.claim(second, "w-1", with_copy=True)

    assert (claim.verdict, claim.session_copy) == ("go", '{"v": 1}')
    assert 290 < redis_client.ttl(journal.keys.session_copy("s-cc")) <= 300
    assert journal.claim(second, "w-2").session_copy is None  # not asked: not read


def test_a_finish_without_a_copy_leaves_the_one_before(journal, redis_client, settings):
    queue = settings.commands_queue
    first, second = enqueue(journal, queue, command("s-keep"), command("s-keep"))
    take(redis_client, queue, 2)
    journal.claim(first, "w-1")
    finish(journal, first, "w-1", session_copy=("s-keep", "v1", 300))
    journal.claim(second, "w-1")
    finish(journal, second, "w-1")  # a rejection: the store wrote nothing

    assert copy_text(redis_client.get(journal.keys.session_copy("s-keep"))) == "v1"


def test_a_duplicate_finish_writes_no_copy(journal, redis_client, settings):
    [jid] = enqueue(journal, settings.commands_queue, command("s-dup"))
    journal.claim(jid, "w-1")
    finish(journal, jid, "w-1", session_copy=("s-dup", "first", 300))

    assert not finish(journal, jid, "w-2", session_copy=("s-dup", "late", 300))
    assert redis_client.get(journal.keys.session_copy("s-dup")) == f"{jid}\nfirst"


def test_the_store_is_answered_from_the_claim_and_its_write_waits_for_finish(
    copies, journal, redis_client
):
    key = journal.keys.session_copy("s-h")
    redis_client.set(key, "in redis")
    copies.begin("s-h", "claimed")

    assert copies.get("s-h") == "claimed"
    assert copies.get("s-h") == "in redis"  # once: a reload after a failed condition reads on
    copies.put("s-h", json.dumps({"v": 2}))
    assert redis_client.get(key) == "in redis"  # held for finish
    assert copies.end() == ("s-h", '{"v": 2}', 300)
    assert copies.end() is None

    copies.put("s-h", "outside a command")  # tools and baselines write at once
    assert redis_client.get(key) == "outside a command"


def test_a_claim_that_found_no_copy_answers_none_without_reading(copies, journal, redis_client):
    redis_client.set(journal.keys.session_copy("s-n"), "stale")
    copies.begin("s-n", None)
    assert copies.get("s-n") is None


def exists_calls(redis_client) -> int:
    return redis_client.info("commandstats").get("cmdstat_exists", {}).get("calls", 0)


def test_a_copy_its_predecessor_kept_lets_the_successor_go_without_looking_for_it(
    journal, redis_client, settings
):
    queue = settings.commands_queue
    first, second, third = enqueue(journal, queue, *(command("s-m") for _ in range(3)))
    take(redis_client, queue, 3)
    journal.claim(first, "w-1", with_copy=True)
    finish(journal, first, "w-1", session_copy=("s-m", '{"v": 1}', 300))
    before = exists_calls(redis_client)

    assert journal.claim(second, "w-1", with_copy=True).verdict == "go"
    assert exists_calls(redis_client) == before  # the copy's jid said it: no EXISTS
    # Without a copy from the second (a rejection), the third looks for its entry,
    # which is still there: it waits.
    assert journal.claim(third, "w-2", with_copy=True).verdict == "park"
    assert exists_calls(redis_client) == before + 1


def test_a_copy_the_store_wrote_itself_is_read_as_it_is(copies, journal, redis_client):
    redis_client.set(journal.keys.session_copy("s-raw"), '{"v": 3}')
    assert copies.get("s-raw") == '{"v": 3}'
    redis_client.set(journal.keys.session_copy("s-raw"), '41\n{"v": 4}')
    assert copies.get("s-raw") == '{"v": 4}'
