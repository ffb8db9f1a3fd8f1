"""`take` (pipeline.lua): a message off the queues and its claim in one call, against a
real redis-server. Only a message byte for byte as the journal's entry would write it
is claimed there; anything else is handed over unclaimed, for the worker's own claim."""

from __future__ import annotations

import json

from tests.integration.test_journal import command, enqueue, entry, finish, queued_jids
from worker.delivery.journal import Journal


def calls(redis_client) -> int:
    return sum(stats["calls"] for stats in redis_client.info("commandstats").values())


def take(journal: Journal, redis_client, worker: str, *queues: str):
    """One take by `worker` over `queues`, as the transport sends it; what `took` says."""
    raw = journal.take_command(worker, list(queues), with_copy=False)
    reply = redis_client.execute_command(*raw)
    return journal.took(reply, worker)


def test_a_take_pops_the_next_message_and_claims_it_in_the_same_call(
    journal, redis_client, settings
):
    queue = settings.commands_queue
    first, second = enqueue(journal, queue, command("s-take"), command("s-other"))

    key, message = take(journal, redis_client, "w1", queue)

    assert key == queue and json.loads(json.loads(message)["body"])[1]["jid"] == first
    assert entry(redis_client, journal, first)["st"] == "running"
    assert entry(redis_client, journal, first)["own"] == "w1"
    assert queued_jids(redis_client, queue) == [second]
    before = calls(redis_client)
    claimed = journal.claim(first, "w1")  # answered by the take: no call of its own
    assert calls(redis_client) - before == 1  # the INFO that counts
    assert (claimed.verdict, claimed.deliveries, claimed.command) == (
        "go",
        1,
        entry(redis_client, journal, first)["cmd"],
    )
    assert finish(journal, first, "w1", claimed=claimed)
    assert entry(redis_client, journal, first) == {}


def test_a_take_of_empty_queues_finds_nothing_and_claims_nothing(journal, redis_client, settings):
    assert take(journal, redis_client, "w1", settings.commands_queue, settings.bulk_queue) is None


def test_a_take_looks_at_later_keys_in_their_order_when_the_first_is_empty(
    journal, redis_client, settings
):
    (jid,) = enqueue(journal, settings.bulk_queue, command("s-bulk"))

    key, _ = take(journal, redis_client, "w1", settings.commands_queue, settings.bulk_queue)

    assert key == settings.bulk_queue
    assert journal.claim(jid, "w1").verdict == "go"
    assert entry(redis_client, journal, jid)["dlv"] == "1"  # claimed once, by the take


def test_a_successor_taken_before_its_predecessor_finishes_is_parked_by_the_take(
    journal, redis_client, settings
):
    queue = settings.commands_queue
    first, second = enqueue(journal, queue, command("s-gate"), command("s-gate"))
    take(journal, redis_client, "w1", queue)  # the predecessor, now running

    take(journal, redis_client, "w2", queue)

    assert entry(redis_client, journal, second)["st"] == "parked"
    assert journal.claim(second, "w2").verdict == "park"
    assert finish(journal, first, "w1")
    assert queued_jids(redis_client, queue) == [second]  # woken, at the front


def test_a_message_unlike_its_entrys_is_handed_over_unclaimed(journal, redis_client, settings):
    """Someone who can write to the broker puts a message naming a real jid with another
    body: the take claims nothing, and the worker's claim decides (`forged`)."""
    queue = settings.commands_queue
    real = command("s-real")
    (jid,) = enqueue(journal, queue, real)
    raw = redis_client.rpop(queue)
    redis_client.rpush(queue, raw.replace(real["command_id"], "cmd-forged"))

    key, message = take(journal, redis_client, "w1", queue)

    assert key == queue and "cmd-forged" in message
    assert entry(redis_client, journal, jid)["st"] == "queued"  # untouched
    assert entry(redis_client, journal, jid)["dlv"] == "0"
    assert journal.claim(jid, "w1", command_id="cmd-forged").verdict == "forged"


def test_a_plain_message_is_handed_over_unclaimed(journal, redis_client, settings):
    queue = settings.commands_queue
    redis_client.rpush(queue, json.dumps({"body": "[]", "properties": {"delivery_tag": "x"}}))

    key, _ = take(journal, redis_client, "w1", queue)

    assert key == queue
    assert journal.claim("Tx", "w1").verdict == "skip"  # no claim kept from the take


def test_a_takes_claim_answers_only_the_claim_of_its_own_jid_and_worker(
    journal, redis_client, settings
):
    queue = settings.commands_queue
    first, second = enqueue(journal, queue, command("s-a"), command("s-b"))
    take(journal, redis_client, "w1", queue)

    # Another jid first (the taken message never reached the task): asked of Redis,
    # and the take's claim is dropped.
    assert journal.claim(second, "w1").deliveries == 1
    assert journal.claim(first, "w1").deliveries == 2


# ─── The next message taken with the finish (`worker.runtime.taking.Taker`) ───


def test_a_finish_takes_the_next_message_in_its_round_trip_after_a_wait(
    journal, redis_client, settings
):
    from worker.runtime.taking import BACKLOG_MS, Taker

    queue = settings.commands_queue
    first, second = enqueue(journal, queue, command("s-f1"), command("s-f2"))
    taker = Taker(journal, "w1", with_copy=False)
    journal._clock_offset_ms = BACKLOG_MS  # the first command waited that long
    take(journal, redis_client, "w1", queue)
    taker.arm([queue])
    claimed = journal.claim(first, "w1")
    reads = redis_client.info("stats")["total_reads_processed"]

    assert finish(journal, first, "w1", claimed=claimed)

    # One read of the finish and the take together (and the INFO's own).
    assert redis_client.info("stats")["total_reads_processed"] - reads == 2
    sent, taken = taker.after_finish()
    assert sent and taken is not None and taken[0] == queue
    assert entry(redis_client, journal, second)["st"] == "running"  # claimed by the take
    assert journal.claim(second, "w1").deliveries == 1
    assert queued_jids(redis_client, queue) == []


def test_a_finish_takes_nothing_when_its_command_had_not_waited(journal, redis_client, settings):
    from worker.runtime.taking import Taker

    queue = settings.commands_queue
    first, second = enqueue(journal, queue, command("s-n1"), command("s-n2"))
    taker = Taker(journal, "w1", with_copy=False)
    journal._clock_offset_ms = -60_000  # claimed "before" it was enqueued: no wait
    take(journal, redis_client, "w1", queue)
    taker.arm([queue])
    claimed = journal.claim(first, "w1")

    assert finish(journal, first, "w1", claimed=claimed)

    assert taker.after_finish() == (False, None)
    assert queued_jids(redis_client, queue) == [second]


# ─── A batched message's next claim, with the finish before it ───


def test_a_finish_claims_the_batchs_next_command_in_its_round_trip(journal, redis_client, settings):
    queue = settings.bulk_queue
    first, second = enqueue(journal, queue, command("s-b1"), command("s-b2"))
    claimed = journal.claim(first, "w1")
    journal.claim_with_next_finish(second, "w1", rest=(), command_id="", with_copy=False)
    reads = redis_client.info("stats")["total_reads_processed"]

    assert finish(journal, first, "w1", claimed=claimed)

    assert redis_client.info("stats")["total_reads_processed"] - reads == 2  # and the INFO
    assert entry(redis_client, journal, second)["st"] == "running"
    before = calls(redis_client)
    assert journal.claim(second, "w1").verdict == "go"  # answered by the finish's claim
    assert calls(redis_client) - before == 1  # the INFO that counts
    assert entry(redis_client, journal, second)["dlv"] == "1"


def test_a_claim_made_with_a_finish_answers_only_the_same_claim(journal, redis_client, settings):
    queue = settings.bulk_queue
    first, second, third = enqueue(
        journal, queue, command("s-c1"), command("s-c2"), command("s-c3")
    )
    claimed = journal.claim(first, "w1")
    journal.claim_with_next_finish(second, "w1", rest=(), command_id="", with_copy=False)
    assert finish(journal, first, "w1", claimed=claimed)

    # Asked with other arguments (here: keeping the third from the reaper): from Redis.
    assert journal.claim(second, "w1", rest=[third]).deliveries == 2


def test_a_dead_lettering_finish_claims_nothing_ahead(journal, redis_client, settings):
    from worker.delivery.journal import DeadLetter

    queue = settings.bulk_queue
    first, second = enqueue(journal, queue, command("s-d1"), command("s-d2"))
    journal.claim(first, "w1")
    journal.claim_with_next_finish(second, "w1", rest=(), command_id="", with_copy=False)

    finish(journal, first, "w1", dead_letter=DeadLetter("invalid", "ValueError", "no"))

    assert entry(redis_client, journal, second)["st"] == "queued"
    assert journal.claim(second, "w1").deliveries == 1
