"""A solo worker drains a backlog by taking and claiming each message in one call
(`worker.runtime.taking`): every command applied once, in its session's order."""

from __future__ import annotations

from tests.e2e.builders import create, update
from tests.faults.checker import check, read_events, stored_versions, wait_for_outcomes

SESSIONS = 6
UPDATES = 9  # 6 x 10 = 60 commands


def calls_of(redis_client, name: str) -> int:
    return redis_client.info("commandstats").get(f"cmdstat_{name}", {}).get("calls", 0)


def test_a_backlog_is_taken_and_claimed_in_one_call_a_message_each_once_in_order(
    env, tables, store, redis_client, start_workers, send
):
    ids = [f"take-{n}" for n in range(SESSIONS)]
    commands = [create(f"{sid}-c0", sid) for sid in ids] + [
        update(f"{sid}-c{k}", sid, continue_url=f"https://shop.example/{k}")
        for k in range(1, UPDATES + 1)
        for sid in ids
    ]
    send(commands)  # all queued before any worker runs: a backlog
    rpops = calls_of(redis_client, "rpop")

    start_workers(1, concurrency=1)
    events = wait_for_outcomes(
        redis_client, env["CHECKOUT_EVENTS_STREAM"], [c["command_id"] for c in commands]
    )

    verdict = check(commands, events, stored_versions=stored_versions(store, ids))
    verdict.assert_sound()
    assert verdict.applied == len(commands)
    assert len(read_events(redis_client, env["CHECKOUT_EVENTS_STREAM"])) == len(commands)
    # The first message came by BRPOP (it had waited: a backlog), every later one by a
    # take, which pops with RPOP; the last take found the queues empty.
    assert calls_of(redis_client, "rpop") - rpops >= len(commands)
