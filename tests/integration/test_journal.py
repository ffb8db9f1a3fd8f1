"""The journal script (`worker/delivery/pipeline.lua`) against a real redis-server.

Each test drives the operations a producer, a worker and the reaper call, with
made-up worker ids, and reads the keys the script keeps to see what it did.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

import pytest

from worker.delivery.journal import DeadLetter, Journal, Pending, ReapPass
from worker.errors import JournalUnavailable

TASK = "checkout.apply_command"
DEADLINE = 60.0


def command(session_id: str | None = None, **fields: object) -> dict:
    body = {"type": "update_session", "command_id": f"cmd-{uuid.uuid4().hex[:10]}"}
    if session_id is not None:
        body["session_id"] = session_id
    return {**body, "updates": {"continue_url": "https://shop.example/cart"}, **fields}


def pending(cmd: dict) -> Pending:
    return Pending(json.dumps(cmd), cmd["command_id"], cmd.get("session_id"))


def enqueue(journal: Journal, queue: str, *cmds: dict, run_id: str | None = None) -> list[str]:
    (jids,) = journal.enqueue([[pending(c) for c in cmds]], queue=queue, run_id=run_id)
    return jids


def entry(redis_client, journal: Journal, jid: str) -> dict[str, str]:
    return redis_client.hgetall(journal.keys.journal(jid))


def queued_jids(redis_client, queue: str) -> list[str]:
    """The jid in each message on `queue`, next to be taken first (kombu pops the right end)."""
    messages = reversed(redis_client.lrange(queue, 0, -1))
    return [json.loads(json.loads(m)["body"])[1]["jid"] for m in messages]


def take(redis_client, queue: str, count: int = 1) -> list[str]:
    """Take `count` messages off `queue` as a worker's BRPOP does; their jids."""
    messages = [redis_client.rpop(queue) for _ in range(count)]
    return [json.loads(json.loads(m)["body"])[1]["jid"] for m in messages]


def finish(journal: Journal, jid: str, worker: str, **kwargs: object) -> bool:
    event = json.dumps({"type": "session.updated", "jid": jid})
    return journal.finish(jid, worker, event_json=event, outcome="applied", **kwargs)


def redis_ms(redis_client) -> int:
    seconds, micros = redis_client.time()
    return seconds * 1000 + micros // 1000


def poll(condition: Callable[[], object], what: str, *, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.05)


# ─── Enqueue ───


def test_enqueue_writes_the_celery_message_the_entry_and_the_sequence(
    journal, redis_client, settings
):
    queue = settings.commands_queue
    cmd = command("s-enq")

    (jid,) = enqueue(journal, queue, cmd)

    (raw,) = redis_client.lrange(queue, 0, -1)
    message = json.loads(raw)
    assert message["headers"]["task"] == TASK
    assert message["properties"]["delivery_info"]["routing_key"] == queue
    args, kwargs, embed = json.loads(message["body"])
    assert args == [cmd] and kwargs == {"jid": jid}
    assert embed["callbacks"] is None and embed["chain"] is None
    stored = entry(redis_client, journal, jid)
    assert stored["cid"] == cmd["command_id"] and stored["sid"] == "s-enq"
    assert (stored["seq"], stored["st"], stored["q"], stored["qpos"]) == ("1", "queued", queue, "1")
    order = redis_client.hgetall(journal.keys.session_order("s-enq"))
    assert order == {"next": "1", "last": jid, "xa": order["xa"]}  # xa: expiry set then
    assert stored["pj"] == ""  # the first of its session waits for nothing
    assert redis_client.zscore(journal.keys.queued(queue), jid) == 1
    assert redis_client.zscore(journal.keys.due, jid) is None  # a backlog costs the reaper nothing


def test_each_command_of_a_session_gets_the_next_sequence_number(journal, redis_client, settings):
    jids = enqueue(journal, settings.commands_queue, command("s-seq"), command("s-seq"))
    jids += enqueue(journal, settings.commands_queue, command("s-seq"))

    assert [entry(redis_client, journal, j)["seq"] for j in jids] == ["1", "2", "3"]
    assert queued_jids(redis_client, settings.commands_queue) == jids


def test_nothing_per_session_or_per_command_outlives_a_day(journal, redis_client, settings):
    day, week = 86400, 7 * 86400
    enqueue(journal, settings.commands_queue, command("s-ttl"), run_id="r-ttl")
    keys = journal.keys

    assert 0 < redis_client.ttl(keys.session_order("s-ttl")) <= day
    assert 0 < redis_client.ttl(keys.run_outcomes("r-ttl")) <= day
    assert day < redis_client.ttl(keys.run_counts("r-ttl")) <= week  # the run's summary


def test_a_sessions_expiry_is_renewed_once_per_percent_of_its_lifetime(
    journal, redis_client, settings
):
    """One EXPIRE per session per 1% of the order ttl, not per enqueue call: the order
    state lives between 99% and 100% of a day after the session's last command."""
    day = 86400
    key = journal.keys.session_order("s-renew")
    enqueue(journal, settings.commands_queue, command("s-renew"))
    redis_client.expire(key, 100)  # as if set long ago
    enqueue(journal, settings.commands_queue, command("s-renew"))
    assert redis_client.ttl(key) <= 100  # within 1% of a day of the last renewal: kept

    redis_client.hset(key, "xa", redis_ms(redis_client) - day * 10 - 1)  # 1% of a day ago
    enqueue(journal, settings.commands_queue, command("s-renew"))
    assert day - 5 < redis_client.ttl(key) <= day


def test_the_reaper_keeps_the_dead_letter_store_within_its_bounds(
    make_journal, redis_client, settings
):
    journal = make_journal(dead_letter_max=2, dead_letter_ttl=3600)
    keys = journal.keys
    for n in range(4):
        redis_client.zadd(keys.dead_letters, {f"d{n}": 1_000 + n})  # by age: d0 oldest
        redis_client.hset(keys.dead_letter(f"d{n}"), mapping={"id": f"d{n}"})
    assert journal.reap() == (0, 0, 4)  # all older than an hour (Redis clock: now)

    now = redis_ms(redis_client)
    for n in range(4):
        redis_client.zadd(keys.dead_letters, {f"e{n}": now + n})
        redis_client.hset(keys.dead_letter(f"e{n}"), mapping={"id": f"e{n}"})
    assert journal.reap() == (0, 0, 2)
    assert redis_client.zrange(keys.dead_letters, 0, -1) == ["e2", "e3"]  # the newest kept
    assert not redis_client.exists(keys.dead_letter("e0"), keys.dead_letter("e1"))
    assert redis_client.get(keys.dead_letters_evicted) == "6"


def test_the_script_refuses_a_call_with_a_command_past_dynamodbs_item_limit(
    journal, redis_client, settings
):
    fine, huge = command("s-huge"), command("s-huge", note="x" * 400_001)
    with pytest.raises(JournalUnavailable, match=r"command 1 is \d+ bytes, more than 400000"):
        enqueue(journal, settings.commands_queue, fine, huge)
    assert redis_client.llen(settings.commands_queue) == 0
    assert not redis_client.exists(journal.keys.session_order("s-huge"))


# ─── Claim ───


def test_claim_goes_then_skips_a_finished_command(journal, settings):
    (jid,) = enqueue(journal, settings.commands_queue, command("s-go"))

    first = journal.claim(jid, "w1")
    assert (first.verdict, first.deliveries, first.attempts) == ("go", 1, 0)
    assert finish(journal, jid, "w1")

    assert journal.claim(jid, "w2").verdict == "skip"  # a duplicate delivery


def test_claim_is_busy_while_a_live_worker_applies_the_command(journal, settings):
    (jid,) = enqueue(journal, settings.commands_queue, command("s-busy"))
    journal.heartbeat("w1")
    assert journal.claim(jid, "w1").verdict == "go"

    assert journal.claim(jid, "w2").verdict == "busy"


def test_claim_stamps_the_workers_reading_of_redis_clock_which_heartbeats_correct(
    journal, redis_client, settings
):
    """No TIME per claim: the claim is stamped with the worker's clock plus the offset
    its last heartbeat measured (here an offset set an hour off, then corrected)."""
    first, second = enqueue(journal, settings.commands_queue, command(), command())
    journal._clock_offset_ms = 3_600_000
    claimed = journal.claim(first, "w1")
    assert abs(claimed.claimed_ms - redis_ms(redis_client) - 3_600_000) < 1000
    assert entry(redis_client, journal, first)["at"] == str(claimed.claimed_ms)

    journal.heartbeat("w1")  # replies with Redis's clock
    assert abs(journal.claim(second, "w1").claimed_ms - redis_ms(redis_client)) < 1000


def test_a_successor_parks_until_its_predecessor_finishes_then_goes_first(
    journal, redis_client, settings
):
    queue = settings.commands_queue
    first, second = enqueue(journal, queue, command("s-park"), command("s-park"))

    assert journal.claim(second, "w2").verdict == "park"
    assert entry(redis_client, journal, second)["st"] == "parked"
    assert journal.claim(first, "w1").verdict == "go"
    assert finish(journal, first, "w1")

    # Pushed back at the front of its queue: it has waited its turn already.
    assert queued_jids(redis_client, queue)[0] == second
    assert len(queued_jids(redis_client, queue)) == 3
    assert entry(redis_client, journal, second)["st"] == "queued"
    assert journal.claim(second, "w2").verdict == "go"


def test_every_delivery_of_a_command_is_one_celery_task_with_a_tag_of_its_own(
    journal, redis_client, settings
):
    """Flower keys tasks by id: a parked, woken or retried command stays one task."""
    queue = settings.commands_queue
    first, second = enqueue(journal, queue, command("s-ids"), command("s-ids"))
    journal.claim(second, "w2")  # parked
    journal.claim(first, "w1")
    finish(journal, first, "w1")  # wakes `second`: pushed again, at the front
    journal.claim(second, "w2")
    journal.retry(second, "w2", delay=0.0, error=TimeoutError("DynamoDB timed out"))
    poll(lambda: journal.reap()[0] == 1, "the retry is re-enqueued")

    sent = [json.loads(raw) for raw in redis_client.lrange(queue, 0, -1)]
    of_second = [m for m in sent if json.loads(m["body"])[1]["jid"] == second]
    assert len(of_second) == 3  # enqueued, woken, retried
    for message in of_second:
        headers, properties = message["headers"], message["properties"]
        assert headers["id"] == headers["root_id"] == properties["correlation_id"] == second
    tags = [m["properties"]["delivery_tag"] for m in of_second]
    assert len(set(tags)) == 3 and all(tag.startswith(second + ".") for tag in tags)


def test_an_adopted_command_keeps_its_senders_task_id_when_delivered_again(
    journal, redis_client, settings
):
    cmd = command("s-adopted")
    adopt = (json.dumps(cmd), cmd["command_id"], settings.commands_queue)
    journal.claim('Tsent-by"someone', "w1", adopt=adopt)

    journal.retry('Tsent-by"someone', "w1", delay=0.0, error=TimeoutError("timed out"))
    poll(lambda: journal.reap()[0] == 1, "the retry is re-enqueued")

    (raw,) = redis_client.lrange(settings.commands_queue, 0, -1)
    message = json.loads(raw)  # a quote in a foreign task id is escaped, not injected
    assert message["headers"]["id"] == 'sent-by"someone'
    assert json.loads(message["body"])[1] == {"jid": 'Tsent-by"someone'}


def test_a_predecessor_that_is_not_journaled_does_not_hold_its_successor(
    journal, redis_client, settings
):
    first, second = enqueue(journal, settings.commands_queue, command("s-gap"), command("s-gap"))
    # As if Redis had lost the predecessor (a restart without its last writes).
    redis_client.delete(journal.keys.journal(first))

    assert journal.claim(second, "w2").verdict == "go"


def test_claim_journals_a_message_sent_around_the_producer_api(journal, redis_client, settings):
    cmd = command("s-adopt")
    adopt = (json.dumps(cmd), cmd["command_id"], settings.commands_queue)

    assert journal.claim("Ttask-1", "w1", adopt=adopt).verdict == "go"

    stored = entry(redis_client, journal, "Ttask-1")
    assert (stored["cid"], stored["st"], stored["own"]) == (cmd["command_id"], "running", "w1")


# ─── Finish ───


def test_finish_publishes_one_event_and_clears_the_entry_once(journal, redis_client, settings):
    (jid,) = enqueue(journal, settings.commands_queue, command("s-fin"))
    journal.claim(jid, "w1")

    assert finish(journal, jid, "w1") is True
    assert finish(journal, jid, "w2") is False

    (event,) = redis_client.xrange(settings.events_stream)
    assert json.loads(event[1]["event"])["jid"] == jid
    assert not redis_client.exists(journal.keys.journal(jid))
    assert redis_client.zscore(journal.keys.due, jid) is None
    order = redis_client.hmget(journal.keys.session_order("s-fin"), "next", "last")
    assert order == ["1", jid]
    # `busy` still names it until the worker's next beat, which clears it.
    assert journal.reap() == (0, 0, 0)  # a finished command is not taken for one in flight
    journal.heartbeat("w1")
    assert redis_client.hget(journal.keys.prefix + ":busy", "w1") is None


def test_finish_takes_the_short_way_with_its_claim_and_publishes_once(
    journal, redis_client, settings
):
    """With its claim's entry fields, finish reads nothing: publish, unlist, delete. A
    second finish of the same command publishes nothing (its event is taken back)."""
    queue = settings.commands_queue
    (jid,) = enqueue(journal, queue, command("s-short"), run_id="r-short")
    claimed = journal.claim(jid, "w1")
    assert claimed.entry_queue == queue and claimed.entry_run == "r-short"

    assert finish(journal, jid, "w1", claimed=claimed) is True
    assert finish(journal, jid, "w2", claimed=claimed) is False

    (event,) = redis_client.xrange(settings.events_stream)
    assert json.loads(event[1]["event"])["jid"] == jid
    assert not redis_client.exists(journal.keys.journal(jid))
    assert redis_client.zscore(journal.keys.queued(queue), jid) is None
    assert redis_client.hget(journal.keys.run_counts("r-short"), "applied") == "1"


@pytest.mark.parametrize("when", ["after its claim", "before its claim"])
def test_a_successor_parked_on_a_command_is_woken_by_its_finish_either_way(
    journal, redis_client, settings, when
):
    """A successor that parks takes its predecessor off its listing (into `due`), so the
    predecessor's short-way finish finds it unlisted and wakes the successor; parked
    before the claim, the claim does not offer the short way at all."""
    queue = settings.commands_queue
    first, second = enqueue(journal, queue, command("s-wake2"), command("s-wake2"))
    if when == "before its claim":
        assert journal.claim(second, "w2").verdict == "park"
    claimed = journal.claim(first, "w1")
    if when == "after its claim":
        assert claimed.entry_queue == queue
        assert journal.claim(second, "w2").verdict == "park"
        assert redis_client.zscore(journal.keys.queued(queue), first) is None
        assert redis_client.zscore(journal.keys.due, first) is not None  # watched there
    else:
        assert claimed.entry_queue == ""

    assert finish(journal, first, "w1", claimed=claimed)

    assert queued_jids(redis_client, queue)[0] == second  # woken, at the front
    assert entry(redis_client, journal, second)["st"] == "queued"
    assert redis_client.zscore(journal.keys.due, first) is None
    assert journal.claim(second, "w2").verdict == "go"


def test_a_predecessor_retried_after_its_successor_parked_still_wakes_it(
    journal, redis_client, settings
):
    queue = settings.commands_queue
    first, second = enqueue(journal, queue, command("s-wake3"), command("s-wake3"))
    journal.claim(first, "w1")
    assert journal.claim(second, "w2").verdict == "park"
    journal.retry(first, "w1", delay=0.0, error=TimeoutError("DynamoDB timed out"))
    poll(lambda: journal.reap()[0] >= 1, "the retry is re-enqueued")

    claimed = journal.claim(first, "w1")
    assert claimed.verdict == "go" and claimed.entry_queue == ""  # it has a `wake`
    assert finish(journal, first, "w1", claimed=claimed)

    assert entry(redis_client, journal, second)["st"] == "queued"
    assert journal.claim(second, "w2").verdict == "go"


def test_a_lost_predecessor_its_successor_parked_on_comes_back_from_its_listing(
    make_journal, redis_client, settings
):
    """Found by a Redis restart under load: a predecessor whose message was lost before
    its claim must stay listed when a successor parks on it, where `reap_lost` finds it
    a visibility timeout after the loss; moved into `due` it sat there a timeout, was
    listed again, and came back only a timeout after that."""
    journal = make_journal(visibility_timeout=1)
    queue = settings.commands_queue
    lost, second = enqueue(journal, queue, command("s-lost"), command("s-lost"))
    take(redis_client, queue, 2)  # `lost`'s message goes with its worker
    assert journal.claim(second, "w2").verdict == "park"

    assert redis_client.zscore(journal.keys.queued(queue), lost) is not None
    assert redis_client.zscore(journal.keys.due, lost) is None

    def reaped() -> bool:
        journal.reap()
        return lost in queued_jids(redis_client, queue)

    poll(reaped, "the lost predecessor is re-enqueued")
    claimed = journal.claim(lost, "w1")
    assert claimed.verdict == "go" and claimed.entry_queue == ""  # it has a `wake`
    assert finish(journal, lost, "w1", claimed=claimed)
    # Woken by that finish, or pushed by its own re-check meanwhile: queued either way.
    assert entry(redis_client, journal, second)["st"] == "queued"
    assert second in queued_jids(redis_client, queue)
    assert journal.claim(second, "w2").verdict == "go"


def test_the_reaper_leaves_a_command_a_successor_parked_on_while_it_is_applied(
    make_journal, redis_client, settings
):
    """In `due` while its successor waits: a live worker applying it keeps it there."""
    journal = make_journal(heartbeat_timeout=1, visibility_timeout=1)
    queue = settings.commands_queue
    first, second = enqueue(journal, queue, command("s-wake4"), command("s-wake4"))
    take(redis_client, queue, 2)
    journal.heartbeat("w1")
    claimed = journal.claim(first, "w1")
    journal.heartbeat("w1", first)
    assert journal.claim(second, "w2").verdict == "park"

    until = redis_ms(redis_client) + 2500
    while redis_ms(redis_client) < until:  # past its due time, twice
        journal.heartbeat("w1", first)
        journal.reap()
        time.sleep(0.05)
    assert entry(redis_client, journal, first)["st"] == "running"
    assert finish(journal, first, "w1", claimed=claimed)
    assert entry(redis_client, journal, second)["st"] == "queued"


# ─── Retry and reap ───


def test_a_retry_is_re_enqueued_by_the_reaper_once_its_delay_is_over(
    journal, redis_client, settings
):
    queue = settings.commands_queue
    (jid,) = enqueue(journal, queue, command("s-retry"))
    journal.claim(jid, "w1")
    before = redis_ms(redis_client)

    journal.retry(jid, "w1", delay=3.0, error=TimeoutError("DynamoDB timed out"))

    stored = entry(redis_client, journal, jid)
    assert (stored["st"], stored["att"], stored["etype"]) == ("waiting", "1", "TimeoutError")
    due = redis_client.zscore(journal.keys.due, jid)
    assert before + 3000 <= due <= redis_ms(redis_client) + 3000
    assert journal.reap() == (0, 0, 0)
    assert len(queued_jids(redis_client, queue)) == 1

    poll(lambda: journal.reap()[0] == 1, "the retry is re-enqueued")
    assert redis_ms(redis_client) >= due
    assert queued_jids(redis_client, queue) == [jid, jid]  # its first message, then the retry
    assert journal.claim(jid, "w2").attempts == 1


def test_the_reaper_re_enqueues_a_dead_workers_command_and_leaves_a_live_ones(
    make_journal, redis_client, settings
):
    journal = make_journal(heartbeat_timeout=1, visibility_timeout=1)
    queue = settings.commands_queue
    dead_jid, live_jid = enqueue(journal, queue, command("s-dead"), command("s-live"))
    take(redis_client, queue, 2)
    for worker, jid in (("dead", dead_jid), ("live", live_jid)):
        journal.heartbeat(worker)
        assert journal.claim(jid, worker).verdict == "go"
        journal.heartbeat(worker, jid)  # its heartbeat thread names the command

    def reap_while_live_beats() -> bool:
        journal.heartbeat("live", live_jid)  # alive, and still applying its command
        journal.reap()
        return entry(redis_client, journal, dead_jid)["st"] == "queued"

    poll(reap_while_live_beats, "the dead worker's command is re-enqueued")
    until = redis_ms(redis_client) + 1500
    while redis_ms(redis_client) < until:  # and the lost check's passes leave the live one
        journal.heartbeat("live", live_jid)
        journal.reap()
        time.sleep(0.05)

    assert queued_jids(redis_client, queue) == [dead_jid]
    live = entry(redis_client, journal, live_jid)
    assert (live["st"], live["own"]) == ("running", "live")
    assert redis_client.zscore(journal.keys.queued(queue), live_jid) is not None  # still watched
    assert redis_client.zscore(journal.keys.workers, "dead") is None


def test_a_command_whose_worker_died_before_a_heartbeat_named_it_comes_back(
    make_journal, redis_client, settings
):
    """Claimed (a claim writes no `busy` mark), then a heartbeat that read no command yet,
    then the process died: the entry running under a dead owner is pushed again."""
    journal = make_journal(heartbeat_timeout=1, visibility_timeout=1)
    queue = settings.commands_queue
    (jid,) = enqueue(journal, queue, command("s-early"))
    take(redis_client, queue)
    journal.heartbeat("early")
    assert journal.claim(jid, "early").verdict == "go"
    assert redis_client.hget(f"{journal.keys.prefix}:busy", "early") is None  # no mark
    journal.heartbeat("early")  # its thread had not seen the command yet

    poll(lambda: journal.reap()[0] == 1, "the command is pushed again")

    assert entry(redis_client, journal, jid)["st"] == "queued"
    assert queued_jids(redis_client, queue) == [jid]


@pytest.mark.parametrize("backlog", [0, 30])
def test_a_dead_workers_command_no_beat_named_comes_back_within_a_heartbeat_timeout(
    make_journal, redis_client, settings, backlog
):
    """Not a visibility timeout later: the reaper finds what a dead process claimed from
    the entries listed below the lowest position still queued (with or without a backlog
    behind it), and leaves the backlog and a live worker's command alone."""
    journal = make_journal(heartbeat_timeout=1, visibility_timeout=600)
    queue = settings.commands_queue
    dead_jid, live_jid = enqueue(journal, queue, command("s-dead2"), command("s-live2"))
    behind = enqueue(journal, queue, *(command() for _ in range(backlog))) if backlog else []
    take(redis_client, queue, 2)
    for worker, jid in (("dead2", dead_jid), ("live2", live_jid)):
        journal.heartbeat(worker)
        assert journal.claim(jid, worker).verdict == "go"
    started = time.monotonic()

    def reaped() -> bool:
        journal.heartbeat("live2")  # alive; its beats have not named its command yet
        journal.reap()
        return entry(redis_client, journal, dead_jid)["st"] == "queued"

    poll(reaped, "the dead worker's command is re-enqueued", timeout=10)
    assert time.monotonic() - started < 5
    assert entry(redis_client, journal, live_jid)["st"] == "running"
    assert queued_jids(redis_client, queue) == [*behind, dead_jid]


def test_a_message_skipped_past_in_its_queue_is_re_enqueued_one_still_behind_is_not(
    make_journal, redis_client, settings
):
    journal = make_journal(visibility_timeout=1)
    queue = settings.commands_queue
    lost, taken = enqueue(journal, queue, command(), command())
    take(redis_client, queue, 2)  # `lost` by a worker killed before its claim
    journal.claim(taken, "w1")
    assert finish(journal, taken, "w1")
    (waiting,) = enqueue(journal, queue, command())

    def reaped() -> bool:
        journal.reap()
        return entry(redis_client, journal, lost)["qpos"] != "1"

    poll(reaped, "the lost message is re-enqueued")
    for _ in range(3):  # the next passes leave the one behind alone
        journal.reap()

    assert entry(redis_client, journal, waiting)["qpos"] == "3"
    assert queued_jids(redis_client, queue) == [waiting, lost]


def test_a_woken_successor_does_not_make_the_backlog_behind_it_look_lost(
    make_journal, redis_client, settings
):
    """A parked successor is woken at the front of the queue; claiming it must not mark
    the backlog behind it as passed, or the reaper pushes a copy of all of it."""
    journal = make_journal(visibility_timeout=1)
    queue = settings.commands_queue
    first, second = enqueue(journal, queue, command("s-wake"), command("s-wake"))
    backlog = enqueue(journal, queue, *(command(f"s-b{n}") for n in range(20)))
    journal.heartbeat("w1")
    take(redis_client, queue, 2)
    assert journal.claim(first, "w1").verdict == "go"
    assert journal.claim(second, "w1").verdict == "park"
    assert finish(journal, first, "w1")  # wakes `second`, at the front
    assert take(redis_client, queue) == [second]
    assert journal.claim(second, "w1").verdict == "go"
    journal.heartbeat("w1", second)  # still applying it

    until = redis_ms(redis_client) + 2500
    while redis_ms(redis_client) < until:  # reap passes over 2.5 visibility timeouts
        journal.heartbeat("w1", second)
        assert journal.reap() == (0, 0, 0)
        time.sleep(0.05)
    positions = [entry(redis_client, journal, jid)["qpos"] for jid in backlog]
    assert positions == [str(n) for n in range(3, 23)]  # none re-enqueued
    assert redis_client.llen(queue) == 20  # nothing pushed twice


def test_a_woken_successor_still_on_its_queue_is_not_taken_for_lost(
    make_journal, redis_client, settings
):
    """A woken successor at the front carries the last position given out when it was
    put there. With every message behind it taken, it is the only one on the queue: its
    own position is what the queue has not yet passed, so it is not pushed again."""
    journal = make_journal(visibility_timeout=1)
    queue = settings.commands_queue
    first, second = enqueue(journal, queue, command("s-front"), command("s-front"))
    later = enqueue(journal, queue, *(command(f"s-l{n}") for n in range(3)))
    take(redis_client, queue, 5)
    assert journal.claim(first, "w1").verdict == "go"
    assert journal.claim(second, "w1").verdict == "park"
    for jid in later:
        assert journal.claim(jid, "w1").verdict == "go"
        assert finish(journal, jid, "w1")
    assert finish(journal, first, "w1")  # wakes `second`: the one message on the queue

    until = redis_ms(redis_client) + 2500
    while redis_ms(redis_client) < until:  # reap passes over 2.5 visibility timeouts
        assert journal.reap() == (0, 0, 0)
        time.sleep(0.05)

    assert queued_jids(redis_client, queue) == [second]


def test_the_last_message_of_a_queue_lost_off_it_is_re_enqueued(
    make_journal, redis_client, settings
):
    # Taken off the queue and never claimed (a worker killed in kombu's window, or a
    # task Celery dropped when Redis refused the claim), with nothing sent after it:
    # no later claim will ever move past it, but an empty queue says it is not waiting.
    journal = make_journal(visibility_timeout=1)
    queue = settings.commands_queue
    (lost,) = enqueue(journal, queue, command())
    redis_client.delete(queue)

    def reaped() -> bool:
        journal.reap()
        return queued_jids(redis_client, queue) == [lost]

    poll(reaped, "the lost last message is re-enqueued")
    assert entry(redis_client, journal, lost)["st"] == "queued"


# ─── Dead letters and replay ───


def test_a_dead_lettered_command_is_replayed_once(journal, redis_client, settings):
    queue = settings.commands_queue
    cmd = command("s-dlq")
    (jid,) = enqueue(journal, queue, cmd)
    journal.claim(jid, "w1")
    journal.retry(jid, "w1", delay=60, error=TimeoutError("slow"))
    journal.claim(jid, "w1")
    reason = DeadLetter("retries_exhausted", "StoreUnavailable", "DynamoDB unreachable")

    assert finish(journal, jid, "w1", dead_letter=reason)

    stored = redis_client.hgetall(journal.keys.dead_letter(jid))
    assert json.loads(stored["cmd"]) == cmd
    assert (stored["code"], stored["type"], stored["attempts"], stored["deliveries"]) == (
        "retries_exhausted",
        "StoreUnavailable",
        "1",
        "2",
    )
    assert int(stored["first_failure"]) <= int(stored["last_failure"])
    assert redis_client.zrange(journal.keys.dead_letters, 0, -1) == [jid]

    replayed = journal.replay(jid)
    assert replayed not in ("", "raw", jid)
    assert journal.replay(jid) == ""

    assert queued_jids(redis_client, queue) == [jid, replayed]
    assert redis_client.zcard(journal.keys.dead_letters) == 0
    # Outside the ordering gate: its turn has passed.
    assert "seq" not in entry(redis_client, journal, replayed)
    assert journal.claim(replayed, "w2").verdict == "go"


def test_a_raw_message_is_not_replayed(journal, settings):
    reason = DeadLetter("undeliverable", "ValueError", "not JSON")
    journal.bury(
        "raw-1", queue=settings.commands_queue, raw="\x00junk", event_json="{}", dead_letter=reason
    )

    assert journal.replay("raw-1") == "raw"
    assert journal.replay("no-such-entry") == ""


# ─── Runs ───


def test_a_run_counts_each_outcome_and_skips_what_it_finished(journal, redis_client, settings):
    queue = settings.commands_queue
    applied, rejected, dead = command("s-r1"), command("s-r2"), command("s-r3")
    jids = enqueue(journal, queue, applied, rejected, dead, run_id="run-1")
    for jid in jids:
        journal.claim(jid, "w1")
    assert finish(journal, jids[0], "w1")
    event = json.dumps({"type": "command.rejected"})
    journal.finish(jids[1], "w1", event_json=event, outcome="rejected:session_not_found")
    reason = DeadLetter("handler_failed", "KeyError", "'x'")
    journal.finish(jids[2], "w1", event_json=event, outcome="dead_lettered", dead_letter=reason)

    again = enqueue(journal, queue, applied, command("s-r4"), run_id="run-1")

    assert again[0] == "" and again[1]
    assert len(queued_jids(redis_client, queue)) == 4
    assert redis_client.hgetall(journal.keys.run_counts("run-1")) == {
        "sent": "4",
        "applied": "1",
        "rejected:session_not_found": "1",
        "dead_lettered": "1",
    }
    assert redis_client.lrange(journal.keys.run_examples("run-1"), 0, -1) == [
        f"rejected:session_not_found {rejected['command_id']}",
        f"dead_lettered {dead['command_id']}",
    ]
    assert redis_client.hget(journal.keys.run_outcomes("run-1"), applied["command_id"]) == "applied"


# ─── Deaths ───


def test_deliveries_that_died_are_counted_and_then_the_claim_says_dead(make_journal, settings):
    journal = make_journal(max_retries=1)  # two deaths are enough
    (jid,) = enqueue(journal, settings.commands_queue, command("s-die"))

    # Worker processes that never beat: each one died holding the command.
    assert journal.claim(jid, "w1").verdict == "go"
    journal.retry(jid, "w1", delay=60, error=TimeoutError("slow"))  # a failure, not a death
    assert (journal.claim(jid, "w2").deliveries, journal.claim(jid, "w3").deliveries) == (2, 3)

    final = journal.claim(jid, "w4")
    assert (final.verdict, final.deliveries, final.attempts) == ("dead", 3, 1)


def test_only_the_lease_holder_reaps(journal, redis_client, settings):
    queue = settings.commands_queue
    (jid,) = enqueue(journal, queue, command("s-lease"))
    journal.claim(jid, "w1")
    journal.retry(jid, "w1", delay=0.0, error=TimeoutError("DynamoDB timed out"))

    def reap(owner: str) -> ReapPass:
        return journal.reap_pass(owner=owner, lease_ms=60_000)

    # The first reaper takes the lease in the same call that does its work...
    poll(lambda: reap("r1").requeued == 1, "the holder re-enqueues")
    assert redis_client.get(journal.keys.reaper_lease) == "r1"
    journal.claim(jid, "w2")
    journal.retry(jid, "w2", delay=0.0, error=TimeoutError("DynamoDB timed out"))

    # ...and another reaper does nothing while it holds it; the holder renews and goes on.
    assert reap("r2")[:3] == (0, 0, 0) and not reap("r2").held
    assert redis_client.zscore(journal.keys.due, jid) is not None
    poll(lambda: reap("r1").requeued == 1, "the holder goes on")


def test_a_beat_that_read_the_command_before_finish_does_not_mark_it_again(
    journal, redis_client, settings
):
    (jid,) = enqueue(journal, settings.commands_queue, command("s-beat"))
    assert journal.claim(jid, "w1").verdict == "go"
    journal.heartbeat("w1", jid)  # while applying: marked
    assert redis_client.hget(f"{journal.keys.prefix}:busy", "w1") == jid
    journal.heartbeat("w1", None, clear=False)  # told there is nothing to clear
    assert redis_client.hget(f"{journal.keys.prefix}:busy", "w1") == jid

    assert finish(journal, jid, "w1")
    journal.heartbeat("w1", jid)  # the heartbeat thread's stale read lands after finish

    assert redis_client.hget(f"{journal.keys.prefix}:busy", "w1") is None


# ─── The store's session copies, kept next to the journal ───


def test_session_copies_are_kept_for_their_ttl_and_replaced_by_the_next(redis_client, journal):
    from worker.delivery.session_copies import RedisSessionCopies

    copies = RedisSessionCopies(redis_client, journal.keys, ttl=300)
    assert copies.get("cs_copy") is None
    copies.put("cs_copy", '{"at": 1, "item": {}}')
    copies.put("cs_copy", '{"at": 2, "item": {}}')

    assert copies.get("cs_copy") == '{"at": 2, "item": {}}'
    assert 295 <= redis_client.ttl(journal.keys.session_copy("cs_copy")) <= 300


def test_session_copies_never_fail_a_command_when_redis_does(journal):
    from worker.delivery.session_copies import RedisSessionCopies
    from worker.redis_client import make_redis_client

    unreachable = make_redis_client("redis://127.0.0.1:1/0")
    copies = RedisSessionCopies(unreachable, journal.keys, ttl=300)

    copies.put("cs_copy", "{}")  # logged, not raised
    assert copies.get("cs_copy") is None  # the store reads DynamoDB instead
