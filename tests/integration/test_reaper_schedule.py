"""The reaper's schedule (`worker.delivery.reaper`) against a real redis-server: what an
idle tick costs Redis, and that due retries still go on the ticks between full passes."""

from __future__ import annotations

from tests.integration.test_journal import command, enqueue, queued_jids
from worker.delivery.reaper import FULL_EVERY, LEASE_CHECK_EVERY, Reaper


def calls(redis_client) -> int:
    return sum(stats["calls"] for stats in redis_client.info("commandstats").values())


def redis_calls_of(redis_client, action) -> int:
    """Redis calls `action` made (less the INFO that reads the count after it)."""
    before = calls(redis_client)
    action()
    return calls(redis_client) - before - 1


def test_an_idle_holder_costs_one_redis_call_a_tick_between_full_passes(journal, redis_client):
    reaper = Reaper(journal, owner="r1", interval=1.0)
    assert reaper.tick().held  # the first tick is a full pass: it takes the lease

    between = [redis_calls_of(redis_client, reaper.tick) for _ in range(FULL_EVERY - 1)]

    assert between == [1] * (FULL_EVERY - 1)  # one ZRANGE of `due`: nothing due
    assert reaper.tick() is not None  # the next full pass renews the lease


def test_a_process_without_the_lease_reads_who_holds_it_and_does_nothing(journal, redis_client):
    holder, other = (
        Reaper(journal, owner="r1", interval=1.0),
        Reaper(journal, owner="r2", interval=1.0),
    )
    assert holder.tick().held

    ticks = FULL_EVERY * LEASE_CHECK_EVERY
    spent = [redis_calls_of(redis_client, other.tick) for _ in range(ticks + 1)]

    # One GET of the lease, then nothing until its next look.
    assert spent == [1] + [0] * (ticks - 1) + [1]


def test_a_due_retry_goes_on_a_tick_between_full_passes(journal, redis_client, settings):
    queue = settings.commands_queue
    (jid,) = enqueue(journal, queue, command("s-tick"))
    reaper = Reaper(journal, owner="r1", interval=1.0)
    assert reaper.tick().held
    journal.claim(jid, "w1")
    journal.retry(jid, "w1", delay=0.0, error=TimeoutError("DynamoDB timed out"))

    done = reaper.tick()  # not a full pass

    assert done is not None and done.requeued == 1
    assert queued_jids(redis_client, queue) == [jid, jid]
