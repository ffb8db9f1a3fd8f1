"""Bulk runs end to end through real `checkout worker` processes: a bulk-update of a
few hundred sessions beside interactive traffic, and a `checkout send` resumed after
SIGKILL. The same at scale, 10,000 sessions through two workers, is `make bench-bulk`
(`benchmarks/bulk.py`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from tasks.cli.send import file_run_id
from tasks.embedded.stack import CHECKOUT
from tests.e2e.builders import create, seed_layout_item, update
from worker.delivery.keys import RedisKeys
from worker.delivery.runs import read_run

# Enough that the run is still going when the interactive commands arrive; scale is the
# benchmark's (`make bench-bulk`: 10,000 sessions).
BULK_SESSIONS = 600


def put_seed_sessions(dynamodb, table: str, ids: list[str]) -> None:
    """Seed-layout items, 25 per BatchWriteItem, a few batches at a time."""
    ttl = int(time.time()) + 3600

    def write(chunk: list[str]) -> None:
        requests = [{"PutRequest": {"Item": seed_layout_item(i, ttl=ttl)}} for i in chunk]
        while requests:
            reply = dynamodb.batch_write_item(RequestItems={table: requests})
            requests = reply.get("UnprocessedItems", {}).get(table, [])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, [ids[n : n + 25] for n in range(0, len(ids), 25)]))


def wait_for(condition, *, timeout: float = 120.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"no {what} after {timeout}s"
        time.sleep(0.1)
    return value


def test_a_bulk_update_leaves_room_for_interactive_commands(
    env, tables, dynamodb, redis_client, start_workers, checkout, tmp_path
):
    ids = [f"bulk-{n:05d}" for n in range(BULK_SESSIONS)]
    put_seed_sessions(dynamodb, tables.sessions_table, ids)
    keys = RedisKeys(env["CHECKOUT_KEY_PREFIX"])
    # --ids: moto's Scan is superlinear in the table size (10,000 items take minutes);
    # --where is tested against the same item layouts in tests/integration/test_runs.py.
    # One worker process: the bulk run then lasts long enough to be overtaken.
    id_file = tmp_path / "all-ids.txt"
    id_file.write_text("\n".join(ids) + "\n")
    args = ["--ids", str(id_file), "--run-id", "r-bulk", "--wait", "--json", "--timeout", "250"]
    bulk = subprocess.Popen(
        [CHECKOUT, "bulk-update", "--set", "currency=EUR", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(
            lambda: read_run(redis_client, keys, "r-bulk").sent == BULK_SESSIONS, what="enqueue"
        )
        start_workers(1, concurrency=1)
        wait_for(lambda: read_run(redis_client, keys, "r-bulk").applied >= 20, what="progress")

        interactive = [create(f"i-{n}", f"inter-{n}") for n in range(5)]
        text = "".join(json.dumps(c) + "\n" for c in interactive)
        sent = checkout("send", "-", "--run-id", "r-inter", input=text)
        assert sent.returncode == 0, sent.stderr
        wait_for(lambda: read_run(redis_client, keys, "r-inter").applied == 5, what="interactive")
        # The interactive commands overtook the bulk run, which is still going.
        assert read_run(redis_client, keys, "r-bulk").pending > BULK_SESSIONS // 4

        stdout, stderr = bulk.communicate(timeout=280)
    finally:
        if bulk.poll() is None:
            bulk.kill()
            bulk.wait()
    assert bulk.returncode == 0, stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary | {"failures": []} == {
        "run_id": "r-bulk",
        "sent": BULK_SESSIONS,
        "applied": BULK_SESSIONS,
        "rejected": {},
        "dead_lettered": 0,
        "pending": 0,
        "failures": [],
    }
    assert json.loads(checkout("get", ids[-1]).stdout)["currency"] == "EUR"
    # Rerunning the same bulk update is a no-op: the run already finished every session.
    some = tmp_path / "ids.txt"
    some.write_text("\n".join(ids[:3]) + "\n")
    again = checkout(
        "bulk-update", "--set", "currency=EUR", "--ids", str(some), "--run-id", "r-bulk", "--json"
    )
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout.strip().splitlines()[-1])["sent"] == BULK_SESSIONS
    assert redis_client.llen(env["CHECKOUT_BULK_QUEUE"]) == 0


def test_send_resumes_after_sigkill_and_applies_nothing_twice(
    env, tables, dynamodb, redis_client, start_workers, checkout, tmp_path
):
    count = 600
    path = tmp_path / "creates.jsonl"
    commands = [create(f"rs-{n}", f"resume-{n:04d}") for n in range(count)]
    lines = [json.dumps(c) + "\n" for c in commands]
    path.write_text("".join(lines))
    run_id = file_run_id(str(path))
    keys = RedisKeys(env["CHECKOUT_KEY_PREFIX"])
    start_workers(2)

    # The first run reads the file through a pipe we feed halfway, then dies by SIGKILL.
    first = subprocess.Popen(
        [CHECKOUT, "send", "-", "--run-id", run_id, "--quiet"],
        env=env,
        stdin=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    first.stdin.write("".join(lines[: count // 2]))
    first.stdin.flush()
    wait_for(lambda: read_run(redis_client, keys, run_id).sent >= count // 2, what="first half")
    wait_for(lambda: read_run(redis_client, keys, run_id).applied > 0, what="an applied command")
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    done_before = read_run(redis_client, keys, run_id).applied

    result = checkout("send", str(path), "--wait", "--json", "--timeout", "120")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["run_id"] == run_id
    assert (summary["sent"], summary["applied"], summary["pending"]) == (count, count, 0)
    assert done_before > 0
    # Each session was created exactly once: version 1, however often its command ran.
    versions = [
        json.loads(checkout("get", f"resume-{n:04d}").stdout)["version"]
        for n in (0, count // 2, count - 1)
    ]
    assert versions == [1, 1, 1]
    created = [
        json.loads(fields["event"])
        for _, fields in redis_client.xrange(env["CHECKOUT_EVENTS_STREAM"])
    ]
    applied_ids = {e["command_id"] for e in created if e["type"] == "session.created"}
    assert applied_ids == {c["command_id"] for c in commands}


def test_send_wait_reports_rejections_with_exit_1(env, tables, start_workers, checkout):
    start_workers(1)
    commands = [create("w-1", "s-wait"), update("w-2", "s-missing-zz", currency="EUR")]
    text = "".join(json.dumps(c) + "\n" for c in commands)
    result = checkout("send", "-", "--wait", "--timeout", "120", input=text)
    assert result.returncode == 1, result.stderr
    assert "2 sent, 1 applied, 1 rejected, 0 dead-lettered, 0 pending" in result.stdout
    assert "w-2 (rejected:session_not_found)" in result.stdout
