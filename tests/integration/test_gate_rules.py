"""The ordering gate's rules (`claim`, `finish`, `reap`, `reap_lost` in
`worker/delivery/pipeline.lua`), one rule a test, against a real redis-server.

Each test sets up the one situation its rule decides and asserts what the rule is
there for, so that removing the rule from the script fails the test.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.test_journal import command, enqueue, entry, finish, poll, queued_jids, take
from worker.delivery.journal import DeadLetter

# Waits for the reaper: its passes come a visibility timeout (1 s here) apart.
REAP_DEADLINE = 15.0


def test_a_command_waits_exactly_while_its_predecessor_is_journaled(
    journal, redis_client, settings
):
    """The gate is the predecessor's journal entry, not a counter: a command whose
    predecessor finished goes whatever finished before, and one whose predecessor is
    still journaled waits, even when commands before that one finished out of order."""
    first, second, third = enqueue(
        journal, settings.commands_queue, command("s-gate"), command("s-gate"), command("s-gate")
    )
    # As if Redis had lost the first command's place (a restart without its last writes):
    # the second does not wait for it, and finishes first.
    redis_client.hset(journal.keys.journal(second), "pj", "")
    assert journal.claim(third, "w3").verdict == "park"  # the second is still journaled
    assert journal.claim(second, "w2").verdict == "go"
    assert finish(journal, second, "w2")  # wakes the third
    assert entry(redis_client, journal, third)["st"] == "queued"

    assert journal.claim(first, "w1").verdict == "go"
    assert journal.claim(third, "w3").verdict == "go"  # its own predecessor is gone
    assert finish(journal, first, "w1")
    assert entry(redis_client, journal, third)["st"] == "running"  # the first wakes no one


def test_a_rejected_or_dead_lettered_predecessor_lets_its_successor_go(
    journal, redis_client, settings
):
    """Every outcome, not only `applied`, advances the gate and wakes the next command:
    a rejected or dead-lettered command must not hold its session's later commands."""
    queue = settings.commands_queue
    first, second, third = enqueue(
        journal, queue, command("s-outcomes"), command("s-outcomes"), command("s-outcomes")
    )
    assert journal.claim(second, "w2").verdict == "park"
    assert journal.claim(third, "w3").verdict == "park"
    assert journal.claim(first, "w1").verdict == "go"

    rejected = json.dumps({"type": "command.rejected", "jid": first})
    assert journal.finish(first, "w1", event_json=rejected, outcome="rejected:session_not_found")

    assert not redis_client.exists(journal.keys.journal(first))
    assert entry(redis_client, journal, second)["st"] == "queued"  # woken
    assert queued_jids(redis_client, queue)[0] == second
    assert journal.claim(second, "w2").verdict == "go"

    reason = DeadLetter("handler_failed", "KeyError", "'x'")
    dead = json.dumps({"type": "command.dead_lettered", "jid": second})
    assert journal.finish(
        second, "w2", event_json=dead, outcome="dead_lettered", dead_letter=reason
    )

    assert not redis_client.exists(journal.keys.journal(second))
    assert entry(redis_client, journal, third)["st"] == "queued"  # woken
    assert queued_jids(redis_client, queue)[0] == third
    assert journal.claim(third, "w3").verdict == "go"


def test_the_reaper_re_enqueues_a_parked_command_once_it_is_due(
    make_journal, redis_client, settings
):
    """A parked command is due for a re-check a visibility timeout after it parked: the
    reaper pushes it again (a lost wake-up must not leave it parked for good), and its
    claim looks at the gate again."""
    journal = make_journal(visibility_timeout=1)
    queue = settings.commands_queue
    first, second = enqueue(journal, queue, command("s-recheck"), command("s-recheck"))
    journal.heartbeat("w1", first)
    assert journal.claim(first, "w1").verdict == "go"
    assert journal.claim(second, "w2").verdict == "park"
    parked_due = redis_client.zscore(journal.keys.due, second)
    assert parked_due is not None

    def re_enqueued() -> bool:
        journal.heartbeat("w1", first)  # the predecessor is still being applied
        journal.reap()
        return entry(redis_client, journal, second)["st"] != "parked"

    poll(re_enqueued, "the parked command is re-enqueued", timeout=REAP_DEADLINE)

    stored = entry(redis_client, journal, second)
    assert stored["st"] == "queued"
    assert redis_client.zscore(journal.keys.due, second) is None  # queued: out of `due`
    assert queued_jids(redis_client, queue) == [first, second, second]
    assert entry(redis_client, journal, first)["st"] == "running"  # the live one left alone
    # Its predecessor is still journaled and unfinished: the re-check parks it again.
    assert journal.claim(second, "w2").verdict == "park"


def test_the_lost_message_check_leaves_a_listed_command_that_is_no_longer_queued(
    make_journal, redis_client, settings
):
    """The reaper takes a message listed below its mark for lost only while the entry is
    still `queued` (or running under a dead owner). Here a worker taken for dead had its
    command pushed again (listed), then turned out alive and failed an attempt: the entry
    waits for its retry delay, and the listed copy is taken off the queue and lost. The
    listing must go, and the command must not be pushed early (and twice: the retry
    comes too)."""
    journal = make_journal(visibility_timeout=1, heartbeat_timeout=1)
    queue = settings.commands_queue
    (jid,) = enqueue(journal, queue, command("s-lost"))
    redis_client.rpop(queue)
    assert journal.claim(jid, "slow").verdict == "go"
    journal.heartbeat("slow", jid)

    def pushed_for_dead_worker() -> bool:  # "slow" beats no more: taken for dead
        journal.reap()
        return entry(redis_client, journal, jid)["st"] == "queued"

    poll(pushed_for_dead_worker, "the command is pushed again", timeout=REAP_DEADLINE)
    listed = journal.keys.queued(queue)
    assert redis_client.zscore(listed, jid) is not None
    # The slow worker's attempt fails after all: a retry a minute from now.
    journal.retry(jid, "slow", delay=60.0, error=TimeoutError("DynamoDB timed out"))
    retry_due = redis_client.zscore(journal.keys.due, jid)
    redis_client.delete(queue)  # the pushed copy is taken off the queue and lost

    def looked_at() -> bool:
        journal.reap()
        return (
            redis_client.zscore(listed, jid) is None
            or entry(redis_client, journal, jid)["st"] != "waiting"
        )

    poll(looked_at, "the reaper looks at the listed command", timeout=REAP_DEADLINE)

    stored = entry(redis_client, journal, jid)
    assert stored["st"] == "waiting"  # still waiting for its retry
    assert redis_client.llen(queue) == 0  # nothing pushed early
    assert redis_client.zscore(journal.keys.due, jid) == retry_due
    assert redis_client.zscore(listed, jid) is None


def test_a_command_enqueued_after_an_upgrade_waits_for_one_the_old_script_enqueued(
    journal, redis_client, settings
):
    """The script before `pj` kept each sequence's jid under the session's `j:<n>`: a
    command enqueued now finds its predecessor there, and waits for it."""
    old = (Path(__file__).parents[1] / "e2e/fixtures/pipeline_before_the_layout.lua").read_text()
    queue = settings.commands_queue
    first = command("s-upgrade")
    args = ["enqueue", settings.key_prefix, queue, 60_000, "", 3600, 3600]
    (old_jid,) = redis_client.eval(
        old, 0, *args, json.dumps(first), first["command_id"], "s-upgrade"
    )
    (new_jid,) = enqueue(journal, queue, command("s-upgrade"))

    assert entry(redis_client, journal, new_jid)["pj"] == old_jid
    assert journal.claim(new_jid, "w2").verdict == "park"
    assert journal.claim(old_jid, "w1").verdict == "go"
    assert finish(journal, old_jid, "w1")  # wakes the new one
    assert journal.claim(new_jid, "w2").verdict == "go"


def test_a_successor_the_reaper_already_pushed_is_not_pushed_again_when_woken(
    make_journal, redis_client, settings
):
    """A parked command's re-check pushed it again (its predecessor was still running);
    when the predecessor then finishes, its message is already on the queue: the wake-up
    pushes no second one."""
    journal = make_journal(visibility_timeout=1)
    queue = settings.commands_queue
    first, second = enqueue(journal, queue, command("s-rewake"), command("s-rewake"))
    take(redis_client, queue, 2)
    journal.heartbeat("w1")
    assert journal.claim(first, "w1").verdict == "go"
    assert journal.claim(second, "w2").verdict == "park"

    def re_enqueued() -> bool:
        journal.heartbeat("w1", first)  # still applying the first
        journal.reap()
        return entry(redis_client, journal, second)["st"] == "queued"

    poll(re_enqueued, "the parked command is re-enqueued", timeout=REAP_DEADLINE)
    assert finish(journal, first, "w1")

    assert queued_jids(redis_client, queue) == [second]  # the re-check's message only
    assert entry(redis_client, journal, second)["qf"] == "0"  # not put at the front again
