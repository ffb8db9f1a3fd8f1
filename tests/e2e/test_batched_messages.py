"""Bulk sends travel several commands to a Celery message (`enqueue_batched`): a few
hundred commands over a few sessions, through two real `checkout worker` processes,
are each applied once and in their session's order."""

from __future__ import annotations

import json
import time

from tests.e2e.builders import create, update
from tests.faults.checker import check, read_events, stored_versions
from worker.delivery.journal import in_flight_count
from worker.delivery.keys import RedisKeys
from worker.delivery.runs import read_run

SESSIONS = 4
UPDATES = 74  # 4 x 75 = 300 commands
PER_MESSAGE = 50  # tasks.producer.BULK_COMMANDS_PER_MESSAGE


def wait_for(condition, *, timeout: float = 120.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"no {what} after {timeout}s"
        time.sleep(0.1)
    return value


def test_a_bulk_send_in_batched_messages_applies_each_command_once_in_session_order(
    env, tables, store, redis_client, start_workers, checkout, tmp_path
):
    ids = [f"batched-{n}" for n in range(SESSIONS)]
    per_session = [
        [create(f"{sid}-c0", sid)]
        + [
            update(f"{sid}-c{k}", sid, continue_url=f"https://shop.example/{k}")
            for k in range(1, UPDATES + 1)
        ]
        for sid in ids
    ]
    # Interleaved, as independent shoppers produce them: every message holds all sessions,
    # so messages taken at once by different pool processes meet at the ordering gate.
    commands = [commands[step] for step in range(UPDATES + 1) for commands in per_session]
    path = tmp_path / "bulk.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in commands))

    sent = checkout("send", str(path), "--bulk", "--run-id", "r-batched", "--quiet")
    assert sent.returncode == 0, sent.stderr

    queued = [json.loads(m) for m in redis_client.lrange(env["CHECKOUT_BULK_QUEUE"], 0, -1)]
    assert {m["headers"]["task"] for m in queued} == {"checkout.apply_commands"}
    sizes = [len(json.loads(m["body"])[0][0]) for m in queued]
    assert sum(sizes) == len(commands) and max(sizes) == PER_MESSAGE
    assert len(queued) <= len(commands) // PER_MESSAGE + 2  # partial ones: a script call's tail

    start_workers(2, concurrency=2)
    keys = RedisKeys(env["CHECKOUT_KEY_PREFIX"])
    wait_for(lambda: read_run(redis_client, keys, "r-batched").pending == 0, what="all outcomes")
    wait_for(lambda: in_flight_count(redis_client, keys) == 0, what="an empty journal")

    events = read_events(redis_client, env["CHECKOUT_EVENTS_STREAM"])
    verdict = check(commands, events, stored_versions=stored_versions(store, ids))
    print(f"\n[batched bulk send] {verdict.summary()}")
    verdict.assert_sound()
    assert verdict.applied == len(commands)
    # Stronger than "rising": the k-th command of a session is its version k + 1.
    versions = {e["command_id"]: e["version"] for e in events}
    assert all(
        versions[c["command_id"]] == int(c["command_id"].rsplit("-c", 1)[1]) + 1 for c in commands
    )
    # Every message was a batched one (checked above), and the workers took them all.
    assert redis_client.llen(env["CHECKOUT_BULK_QUEUE"]) == 0
