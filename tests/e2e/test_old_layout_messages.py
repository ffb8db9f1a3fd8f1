"""Messages queued by the release before the layout change are applied by this one.

`fixtures/pipeline_before_the_layout.lua` is the enqueue script as it was (commit
c8f346d): a deployment upgraded with a backlog has messages and journal entries that
script wrote. Its `enqueue` and `enqueue_batched` take the arguments they take today;
what a worker does with their messages is what has to keep working.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.e2e.builders import create, update
from worker.delivery.journal import in_flight_count
from worker.delivery.keys import RedisKeys

OLD_SCRIPT = (Path(__file__).parent / "fixtures" / "pipeline_before_the_layout.lua").read_text()
WEEK = 7 * 24 * 3600


def old_enqueue(redis_client, settings, commands, *, per_message: int = 1) -> list[str]:
    """Enqueue `commands` with the old script, as the old producers called it."""
    op = "enqueue_batched" if per_message > 1 else "enqueue"
    args = [op, settings.key_prefix, settings.commands_queue, 60_000, "", WEEK, WEEK]
    if per_message > 1:
        args.append(per_message)
    for command in commands:
        args += [json.dumps(command), command["command_id"], command.get("session_id") or ""]
    return redis_client.eval(OLD_SCRIPT, 0, *args)


def test_a_backlog_the_old_script_queued_is_applied_in_order(
    redis_client, settings, start_workers, events
):
    first = [create("old-c1", "cs-old-1"), update("old-u1", "cs-old-1", currency="EUR")]
    batched = [update(f"old-u{n}", "cs-old-1", buyer={"email": f"b{n}@x"}) for n in (2, 3)]
    assert all(old_enqueue(redis_client, settings, first))
    assert all(old_enqueue(redis_client, settings, batched, per_message=2))

    start_workers(1)
    published = events(4)

    assert [e["command_id"] for e in published] == ["old-c1", "old-u1", "old-u2", "old-u3"]
    assert [e["type"] for e in published] == ["session.created"] + ["session.updated"] * 3
    assert published[-1]["session"]["buyer"] == {"email": "b3@x"}
    # Every entry finished; the old script's `due` marks of them go on a reaper pass.
    keys = RedisKeys(settings.key_prefix)
    deadline = time.monotonic() + 30
    while in_flight_count(redis_client, keys) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert in_flight_count(redis_client, keys) == 0
