"""Delivery faults with real `checkout worker` processes: each test sends a stream of
commands through the producer API, injects one kind of fault while workers apply it,
and has the total-queue checker (`checker.py`) account for every command.

Each test prints its counts (`pytest -s` or `-rA` shows them) and asserts that no
command was lost, applied twice or applied out of order, and that every stored
session's version is the number of commands applied to it (no lost update).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from tasks.producer import prepare
from tests.faults.checker import Verdict, check, read_events, stored_versions, wait_for_outcomes
from tests.faults.conftest import (
    WAIT_SECONDS,
    busy_pids,
    children,
    running_commands,
    wait_for,
)
from worker.delivery.journal import in_flight_count
from worker.delivery.keys import RedisKeys

UPDATES_PER_SESSION = 5


def create(command_id: str, session_id: str) -> dict[str, Any]:
    return {"type": "create_session", "command_id": command_id, "session_id": session_id}


def update(command_id: str, session_id: str, step: int) -> dict[str, Any]:
    """An update whose cart and URL name its step, so every applied one changes the session."""
    item = {"id": "li-1", "type": "product", "title": "Mug", "total_amount": 100 * step}
    return {
        "type": "update_session",
        "command_id": command_id,
        "session_id": session_id,
        "updates": {"line_items": [item], "continue_url": f"https://shop.example/c/{step}"},
    }


def session_stream(
    name: str, sessions: int, updates: int = UPDATES_PER_SESSION, *, interleaved: bool = True
) -> list[dict[str, Any]]:
    """`sessions` x (create + `updates` updates). Interleaved: step by step across sessions,
    as many independent shoppers produce them; else each session's commands back to back."""
    ids = [f"{name}-s{n}" for n in range(sessions)]
    per_session = [
        [create(f"{sid}-c0", sid)] + [update(f"{sid}-c{k}", sid, k) for k in range(1, updates + 1)]
        for sid in ids
    ]
    if not interleaved:
        return [command for commands in per_session for command in commands]
    return [commands[step] for step in range(updates + 1) for commands in per_session]


def chunks(commands: list[dict[str, Any]], count: int) -> list[list[dict[str, Any]]]:
    size = -(-len(commands) // count)
    return [commands[i : i + size] for i in range(0, len(commands), size)]


def verify(
    name: str,
    commands: list[dict[str, Any]],
    *,
    redis_client: Any,
    settings: Any,
    store: Any,
    unordered: Iterable[str] = (),
) -> Verdict:
    """Wait for every command's result and for the journal to empty (so late duplicates
    are counted too), run the checker, print its counts, assert them."""
    wait_for_outcomes(
        redis_client,
        settings.events_stream,
        [c["command_id"] for c in commands],
        timeout=WAIT_SECONDS,
    )
    settled(redis_client, settings)
    events = read_events(redis_client, settings.events_stream)
    sessions = {c["session_id"] for c in commands}
    verdict = check(
        commands,
        events,
        stored_versions=stored_versions(store, sessions),
        unordered=unordered,
    )
    print(f"\n[{name}] {verdict.summary()}")
    verdict.assert_sound()
    return verdict


def settled(redis_client: Any, settings: Any) -> None:
    """Wait until nothing is journaled (every delivery chain finished) or queued."""
    keys = RedisKeys(settings.key_prefix)
    wait_for(
        lambda: (
            in_flight_count(redis_client, keys) == 0
            and redis_client.llen(settings.commands_queue) == 0
        ),
        what="the journal and the queue to empty",
    )


def events_at_least(redis_client: Any, settings: Any, count: int) -> None:
    wait_for(
        lambda: redis_client.xlen(settings.events_stream) >= count,
        what=f"{count} result events",
    )


def rewrite_queue(redis_client: Any, queue: str, messages: list[str]) -> None:
    """Replace the queue's messages (only while no worker is running)."""
    pipe = redis_client.pipeline(transaction=True)
    pipe.delete(queue)
    if messages:
        pipe.rpush(queue, *messages)
    pipe.execute()


def jid_of(message: str) -> str:
    """The journal id a queued Celery message carries (its task kwargs)."""
    return json.loads(json.loads(message)["body"])[1]["jid"]


def overtakes(messages: list[str]) -> int:
    """How many commands a queue would deliver before their session predecessor
    (workers pop from the tail)."""
    delivered = [json.loads(json.loads(m)["body"])[0][0]["command_id"] for m in reversed(messages)]
    position = {command_id: n for n, command_id in enumerate(delivered)}
    count = 0
    for command_id in delivered:
        session, step = command_id.rsplit("-c", 1)
        previous = f"{session}-c{int(step) - 1}"
        count += previous in position and position[previous] > position[command_id]
    return count


def applying(redis_client: Any, settings: Any, pid: int) -> str | None:
    """The command the worker process `pid` is applying (per the journal), if any."""
    return running_commands(redis_client, settings.key_prefix).get(pid)


@pytest.fixture
def busy(redis_client, settings) -> Callable[[], set[int]]:
    """Pids of worker processes applying a command right now."""
    return lambda: busy_pids(redis_client, settings.key_prefix)


# ─── The tests ───


def test_duplicate_deliveries_and_duplicate_enqueues_apply_each_command_once(
    workers, producer, redis_client, settings, store
):
    """Every third queued message is delivered twice (the identical journaled message,
    as kombu restores it), and every fifth command is enqueued a second time: each
    command is applied once, the re-enqueued ones republish their first event."""
    commands = session_stream("dup", sessions=30)
    producer.enqueue_many(commands)
    queue = settings.commands_queue
    messages = redis_client.lrange(queue, 0, -1)
    doubled = [copy for n, m in enumerate(messages) for copy in ([m, m] if n % 3 == 0 else [m])]
    rewrite_queue(redis_client, queue, doubled)
    again = commands[::5]
    producer.enqueue_many(again)

    workers.start(concurrency=2)
    workers.start(concurrency=2)
    verdict = verify(
        "duplicate delivery", commands, redis_client=redis_client, settings=settings, store=store
    )
    print(f"  delivered twice: {len(doubled) - len(messages)}, enqueued twice: {len(again)}")
    assert verdict.applied == len(commands)
    # Each second enqueue gets its first event_id again (its event rebuilt from the session,
    # or `already_applied` once later commands applied); a second delivery publishes nothing.
    assert verdict.duplicates == len(again)


def test_concurrent_writers_on_hot_sessions_lose_no_update(
    workers, producer, redis_client, settings, store
):
    """Two workers (four processes) write the same few sessions at once: updates sent
    around the producer API race each other on DynamoDB's conditional writes, beside
    ordered ones. No update is lost: each session's version counts every applied one."""
    from worker.runtime.app import APPLY_COMMAND_TASK, create_app

    sessions = [f"hot-s{n}" for n in range(4)]
    creates = [create(f"{sid}-c0", sid) for sid in sessions]
    producer.enqueue_many(creates)
    workers.start(concurrency=2)
    workers.start(concurrency=2)
    events_at_least(redis_client, settings, len(creates))

    ordered = [update(f"{sid}-o{k}", sid, k) for k in range(1, 11) for sid in sessions]
    racing = [update(f"{sid}-r{k}", sid, 50 + k) for k in range(1, 11) for sid in sessions]
    with create_app(settings) as app:
        for n, command in enumerate(racing):
            app.send_task(APPLY_COMMAND_TASK, args=[command], queue=settings.commands_queue)
            if n % 4 == 0:  # interleave the ordered stream with the racing one
                producer.enqueue_many(ordered[n : n + 4])
    commands = creates + ordered + racing
    verdict = verify(
        "concurrent writers",
        commands,
        redis_client=redis_client,
        settings=settings,
        store=store,
        unordered=[c["command_id"] for c in racing],
    )
    assert verdict.applied == len(commands)
    assert verdict.sessions_checked == len(sessions)


@pytest.mark.parametrize("pool", ["solo", "prefork"])
def test_sigkill_of_a_worker_child_mid_command_loses_nothing(
    pool, workers, producer, redis_client, settings, store, busy
):
    """Four times during a stream, one of a worker's processes (a solo process, or a
    prefork pool process) is SIGKILLed while it applies a command. Its parent starts
    another; its command is re-enqueued by the reaper once the process's heartbeat
    stops, and is applied exactly once, in its session's order."""
    worker = workers.start(concurrency=2, pool=pool)
    commands = session_stream("child", sessions=30)
    killed = []
    sent = 0
    for part in chunks(commands, 4):
        producer.enqueue_many(part)
        sent += len(part)
        events_at_least(redis_client, settings, sent - len(part) // 2)  # mid-chunk
        victim = workers.kill_child(worker, among=busy)
        killed.append(applying(redis_client, settings, victim))
    verify(
        "SIGKILL of one child",
        commands,
        redis_client=redis_client,
        settings=settings,
        store=store,
    )
    print(f"  kills: {workers.kills}, while applying {killed}")
    assert len(set(workers.killed)) == 4
    assert worker.process.poll() is None, "the worker's main process survives its children"


@pytest.mark.parametrize(("pool", "concurrency"), [("prefork", 2), ("solo", 1)])
def test_sigkill_of_a_whole_worker_mid_stream_loses_nothing(
    pool, concurrency, workers, producer, redis_client, settings, store
):
    """Three times during a stream, a whole worker (main process and pool, or a solo
    worker of one process, which applies its commands itself) is SIGKILLed while one of
    its processes applies a command, and a replacement is started; a second worker runs
    throughout. What the dead one had taken off the queue (running or prefetched) comes
    back through the reaper and is applied exactly once."""
    survivor = workers.start(concurrency=concurrency, pool=pool)
    victim = workers.start(concurrency=concurrency, pool=pool)
    commands = session_stream("whole", sessions=36)
    killed = []
    sent = 0
    for part in chunks(commands, 3):
        producer.enqueue_many(part)
        sent += len(part)
        events_at_least(redis_client, settings, sent - len(part) // 2)  # mid-chunk
        # The victim's process and its command from one read of the journal, so the
        # kill is known to land while that process applies that command.
        _, command_id = wait_for(
            lambda v=victim: sorted(
                (pid, command_id)
                for pid, command_id in running_commands(redis_client, settings.key_prefix).items()
                if pid in {v.pid} | set(children(v.pid))
            ),
            what="the victim worker applying a command",
        )[0]
        killed.append(command_id)
        victim = workers.restart(victim, concurrency=concurrency, pool=pool)
    verify(
        "SIGKILL of a whole worker",
        commands,
        redis_client=redis_client,
        settings=settings,
        store=store,
    )
    print(f"  kills: {workers.kills}, while applying {killed}")
    assert survivor.process.poll() is None
    assert len(workers.kills) == 3


def test_one_sessions_updates_in_flight_on_two_workers_apply_in_enqueue_order(
    workers, producer, redis_client, settings, store
):
    """Each session's commands are enqueued back to back, then the queue is shuffled
    (Celery may deliver in any order), so two workers x two processes take several
    updates of one session at once: each is applied in the order it was enqueued."""
    commands = session_stream("order", sessions=20, updates=6, interleaved=False)
    producer.enqueue_many(commands)
    queue = settings.commands_queue
    messages = redis_client.lrange(queue, 0, -1)
    random.Random(5).shuffle(messages)
    rewrite_queue(redis_client, queue, messages)
    overtaking = overtakes(messages)

    workers.start(concurrency=2)
    workers.start(concurrency=2)
    verdict = verify(
        "two updates of one session in flight",
        commands,
        redis_client=redis_client,
        settings=settings,
        store=store,
    )
    print(f"  delivered before their predecessor (queue order): {overtaking}")
    assert overtaking > len(commands) // 4  # the gate had work to do
    assert verdict.applied == len(commands)
    versions = {
        e["command_id"]: e["version"] for e in read_events(redis_client, settings.events_stream)
    }
    # Stronger than "rising": the k-th command of a session is its version k.
    assert all(
        versions[c["command_id"]] == int(c["command_id"].rsplit("-c", 1)[1]) + 1 for c in commands
    )


def test_crash_between_dynamodb_write_and_publish_publishes_the_event_once(
    workers, producer, redis_client, settings, store, tables
):
    """A worker takes a create off the queue, writes DynamoDB and dies before publishing:
    simulated by claiming its journal entry for a worker whose heartbeat is old, taking
    its message off the queue, and applying the command with the service's `apply()`
    (DynamoDB written, nothing published). A worker started afterwards gets it back from
    the reaper, finds the command newest in the session's ledger, rebuilds its event and
    publishes it once; the session's updates, parked behind it, then apply in order."""
    from worker.delivery.journal import Journal
    from worker.runtime.bootstrap import build_service

    commands = session_stream("crash", sessions=5, updates=4)
    producer.enqueue_many(commands)
    victim = commands[0]
    journal = Journal(redis_client, settings)
    queue = settings.commands_queue
    jid = next(
        jid_of(m)
        for m in redis_client.lrange(queue, 0, -1)
        if json.loads(json.loads(m)["body"])[0][0]["command_id"] == victim["command_id"]
    )
    dead_worker = "crashed-host:1:deadbeef"
    now_ms = int(redis_client.time()[0]) * 1000
    redis_client.zadd(journal.keys.workers, {dead_worker: now_ms - 60_000})
    assert journal.claim(jid, dead_worker).verdict == "go"
    taken = [m for m in redis_client.lrange(queue, 0, -1) if jid_of(m) == jid]
    assert len(taken) == 1
    redis_client.lrem(queue, 1, taken[0])  # the dead worker had taken it off the queue
    written = build_service(settings).apply(prepare(victim).text)
    assert store.load(victim["session_id"]).version == 1
    assert not read_events(redis_client, settings.events_stream)

    workers.start(concurrency=2)
    verdict = verify(
        "crash between write and publish",
        commands,
        redis_client=redis_client,
        settings=settings,
        store=store,
    )
    assert verdict.applied == len(commands)
    published = [
        e
        for e in read_events(redis_client, settings.events_stream)
        if e["command_id"] == victim["command_id"]
    ]
    assert [e["event_id"] for e in published] == [written.event_id]
    assert published == [json.loads(written.to_json())]  # rebuilt exactly, stamp and all


def test_the_checker_catches_what_it_is_for():
    """The checker itself, on a hand-made history with one of each failure: a suite whose
    checker passed everything would prove nothing."""

    def event(event_id: str, command_id: str, version: int, kind: str = "session.updated"):
        return {"event_id": event_id, "type": kind, "command_id": command_id, "version": version}

    commands = [{"command_id": f"c{n}", "session_id": "s"} for n in range(6)]
    events = [
        event("e0", "c0", 1, "session.created"),
        event("e0", "c0", 1, "session.created"),  # a duplicate: allowed
        event("e2", "c2", 2),  # applied before c1: out of order
        event("e1", "c1", 3),
        event("e1b", "c1", 4),  # a second, different result: applied twice
        event("d3", "c3", None, "command.dead_lettered"),
        event("e3", "c3", 5),  # its replay: allowed, exempt from order
        event("d4", "c4", None, "command.dead_lettered"),
    ]  # c5: lost
    for e in events:
        e["session_id"] = "s"
    verdict = check(commands, events, stored_versions={"s": 3})
    assert (verdict.lost, verdict.applied_twice, verdict.out_of_order) == (1, 1, 1)
    assert (verdict.duplicates, verdict.replayed, verdict.dead_lettered) == (1, 1, 1)
    assert verdict.lost_updates == 1  # four commands applied (c0-c3), but version 3 stored
    assert verdict.outcomes["c5"] == "lost"
