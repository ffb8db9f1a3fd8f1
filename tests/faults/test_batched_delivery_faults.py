"""SIGKILL of a pool process in the middle of a batched message (several commands to a
Celery message, as bulk sends travel): the commands it had finished are not applied
again, the one it was applying comes back through the reaper, and the rest come back
with the message (Celery requeues it when its pool process dies); each in its
session's order. The total-queue checker (`checker.py`) accounts for every command.
"""

from __future__ import annotations

import json
from typing import Any

from tests.faults.checker import check, read_events, stored_versions, wait_for_outcomes
from tests.faults.conftest import WAIT_SECONDS, running_commands, wait_for
from tests.faults.test_delivery_faults import events_at_least, session_stream
from worker.delivery.journal import in_flight_count
from worker.delivery.keys import RedisKeys

PER_MESSAGE = 50  # tasks.producer.BULK_COMMANDS_PER_MESSAGE


def applying_now(redis_client: Any, key_prefix: str) -> dict[int, str]:
    """Pid -> command id of the worker processes applying a command right now (the
    journal's running entries by owner, `running_commands`)."""
    return running_commands(redis_client, key_prefix)


def positions(redis_client: Any, queue: str) -> dict[str, tuple[int, int]]:
    """command_id -> (message, place in it) for the messages now on `queue`."""
    found = {}
    for m, raw in enumerate(reversed(redis_client.lrange(queue, 0, -1))):
        commands = json.loads(json.loads(raw)["body"])[0][0]
        for place, command in enumerate(commands):
            found[command["command_id"]] = (m, place)
    return found


def test_sigkill_of_a_pool_process_mid_batch_loses_nothing_and_applies_nothing_twice(
    workers, redis_client, settings, store
):
    from tasks.producer import CommandProducer

    producer = CommandProducer.from_settings(settings, bulk=True)
    # Each session's commands back to back, as a bulk file of one session after another:
    # a message holds whole sessions, so the pool processes work through their messages
    # side by side (interleaved sessions, where they meet at the gate, are tested in
    # tests/e2e/test_batched_messages.py).
    commands = session_stream("batch", sessions=30, updates=9, interleaved=False)
    producer.enqueue_many(commands)
    queue = settings.bulk_queue
    layout = positions(redis_client, queue)
    assert len(redis_client.lrange(queue, 0, -1)) == len(commands) // PER_MESSAGE

    # Prefork: its main process holds each message while a pool process applies it (the
    # solo pool's processes are SIGKILLed mid-command in test_delivery_faults.py).
    worker = workers.start(concurrency=2, pool="prefork")
    killed = []
    seen_applying: dict[int, str] = {}

    def applying() -> set[int]:
        now = applying_now(redis_client, settings.key_prefix)
        seen_applying.update(now)  # the latest command seen for each pid
        return set(now)

    for seen in (20, 150):  # each pool process is into a message by then
        events_at_least(redis_client, settings, seen)
        victim = workers.kill_child(worker, among=applying)
        killed.append(seen_applying.get(victim))  # what it was applying a moment before

    wait_for_outcomes(
        redis_client,
        settings.events_stream,
        [c["command_id"] for c in commands],
        timeout=WAIT_SECONDS,
    )
    keys = RedisKeys(settings.key_prefix)
    wait_for(  # the journal empty and every redelivered copy taken, so late duplicates count
        lambda: in_flight_count(redis_client, keys) == 0 and redis_client.llen(queue) == 0,
        what="the journal and the queue to empty",
    )
    events = read_events(redis_client, settings.events_stream)
    sessions = {c["session_id"] for c in commands}
    verdict = check(commands, events, stored_versions=stored_versions(store, sessions))
    print(f"\n[SIGKILL mid-batch] {verdict.summary()}")
    print(f"  kills: {workers.kills}, while applying {[(c, layout.get(c)) for c in killed]}")
    verdict.assert_sound()
    assert verdict.applied == len(commands)
    versions = {e["command_id"]: e["version"] for e in events}
    assert all(
        versions[c["command_id"]] == int(c["command_id"].rsplit("-c", 1)[1]) + 1 for c in commands
    )
    # Mid-batch: a pool process killed past the first command of its message.
    assert all(killed) and any(layout[c][1] > 0 for c in killed)
    assert worker.process.poll() is None, "the worker's main process survives its children"
