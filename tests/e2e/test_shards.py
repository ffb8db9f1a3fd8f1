"""Three real redis-servers as three shards, one `checkout worker --shard K` each:
commands sent through `checkout send` and the Python API reach their session's
shard, every command gets one result in order per session, sessions spread evenly,
and the views that span shards (status, report, send --wait) see all of them."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks.embedded.stack import CHECKOUT, ManagedProcess, start_redis, start_worker, stop_all
from tests.e2e.builders import create, update
from tests.e2e.test_typescript_producer import INTERLEAVE, node_command
from worker.delivery.shards import shard_of
from worker.redis_client import make_redis_client

SHARDS = 3
SESSIONS = 150
PER_SESSION = 4  # a create, then an update each through send, the Python API, TypeScript
DEADLINE = 180.0


@pytest.fixture
def shard_urls(tmp_path: Path) -> Iterator[list[str]]:
    servers: list[ManagedProcess] = []
    urls = []
    for shard in range(SHARDS):
        workdir = tmp_path / f"redis-{shard}"
        workdir.mkdir()
        server, url = start_redis(workdir)
        servers.append(server)
        urls.append(url)
    yield urls
    stop_all(servers)


@pytest.fixture
def sharded_env(env, shard_urls, tables, monkeypatch) -> dict[str, str]:
    env["CHECKOUT_REDIS_URLS"] = ",".join(shard_urls)
    monkeypatch.setenv("CHECKOUT_REDIS_URLS", env["CHECKOUT_REDIS_URLS"])
    return env


@pytest.fixture
def shard_workers(sharded_env, shard_urls, tmp_path) -> Iterator[list[ManagedProcess]]:
    workers = [
        start_worker(
            # The worker serves CHECKOUT_REDIS_URLS[K]; start_worker pings it there.
            {**sharded_env, "CHECKOUT_REDIS_URL": url},
            log=tmp_path / f"worker-{shard}.log",
            concurrency=1,
            extra_args=["--shard", str(shard)],
        )
        for shard, url in enumerate(shard_urls)
    ]
    yield workers
    stop_all(workers)


def checkout(
    env: dict[str, str], *args: str, input: str | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHECKOUT, *args], env=env, input=input, capture_output=True, text=True, timeout=DEADLINE
    )


def stream_events(url: str, stream: str) -> list[dict]:
    client = make_redis_client(url)
    try:
        return [json.loads(fields["event"]) for _, fields in client.xrange(stream)]
    finally:
        client.close()


def test_commands_reach_their_sessions_shard_and_every_view_sees_all_shards(
    sharded_env, shard_urls, shard_workers, settings
):
    from tasks.producer import CommandProducer
    from worker.settings import Settings

    sessions = [f"sh-{n}" for n in range(SESSIONS)]
    by_file = [create(f"{s}-c", s) for s in sessions] + [
        update(f"{s}-u1", s, currency="EUR") for s in sessions
    ]
    sent = checkout(
        sharded_env,
        "send",
        "-",
        "--wait",
        "--json",
        "--timeout",
        str(DEADLINE),
        input="".join(json.dumps(c) + "\n" for c in by_file),
    )
    assert sent.returncode == 0, sent.stderr
    summary = json.loads(sent.stdout.splitlines()[-1])
    assert (summary["sent"], summary["applied"], summary["pending"]) == (300, 300, 0)

    producer = CommandProducer.from_settings(Settings())
    producer.enqueue_many([update(f"{s}-u2", s, currency="JPY") for s in sessions])
    by_typescript = [update(f"{s}-u3", s, currency="USD") for s in sessions]
    node = subprocess.run(
        node_command(str(INTERLEAVE)),
        env=sharded_env,  # CHECKOUT_REDIS_URLS: the TypeScript producer routes too
        input=json.dumps(by_typescript) + "\n",
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert node.returncode == 0, node.stderr
    assert json.loads(node.stdout) == {"enqueued": SESSIONS}

    per_shard = []
    deadline = time.monotonic() + DEADLINE
    while sum(len(events) for events in per_shard) < PER_SESSION * SESSIONS:
        assert time.monotonic() < deadline, "not every command has its result"
        time.sleep(0.2)
        per_shard = [stream_events(url, settings.events_stream) for url in shard_urls]

    for shard, events in enumerate(per_shard):
        # Each shard's stream holds its own sessions' events only, in order per session.
        assert all(shard_of(e["session_id"], SHARDS) == shard for e in events)
        versions: dict[str, list[int]] = {}
        for event in events:
            versions.setdefault(event["session_id"], []).append(event["version"])
        assert all(v == [1, 2, 3, 4] for v in versions.values()), versions
    spread = [len({e["session_id"] for e in events}) for events in per_shard]
    assert sum(spread) == SESSIONS
    assert all(abs(n - SESSIONS / SHARDS) <= 0.25 * SESSIONS / SHARDS for n in spread), spread

    status = checkout(sharded_env, "status", "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert [s["shard"] for s in report["shards"]] == [0, 1, 2]
    assert report["totals"]["stream_length"] == PER_SESSION * SESSIONS
    assert report["totals"]["in_flight"] == 0
    assert len(report["totals"]["workers"]["nodes"]) == SHARDS

    again = checkout(sharded_env, "report", summary["run_id"], "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["applied"] == 300

    listed = checkout(sharded_env, "shards", "--json")
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["recorded"] for r in rows] == ["0/3", "1/3", "2/3"]

    # One event stream for the caller: every shard's, each line naming its shard.
    merged = checkout(sharded_env, "events")
    assert merged.returncode == 0, merged.stderr
    lines = [json.loads(line) for line in merged.stdout.splitlines()]
    assert len(lines) == PER_SESSION * SESSIONS
    assert {(e["shard"], e["stream_id"]) for e in lines} == {
        (shard, e_id) for shard, url in enumerate(shard_urls) for e_id in stream_ids(url, settings)
    }
    stamps = [int(e["stream_id"].split("-")[0]) for e in lines]
    assert stamps == sorted(stamps)  # one time line
    last = {e["shard"]: e["stream_id"] for e in lines}
    resumed = checkout(
        sharded_env, "events", "--after", ",".join(f"{k}:{v}" for k, v in last.items())
    )
    assert resumed.returncode == 0 and resumed.stdout == ""
    mine = checkout(sharded_env, "events", "--session", "sh-7")
    assert [json.loads(line)["command_id"] for line in mine.stdout.splitlines()] == [
        "sh-7-c",
        "sh-7-u1",
        "sh-7-u2",
        "sh-7-u3",
    ]
    grouped = checkout(
        sharded_env, "events", "--group", "billing", "--count", str(PER_SESSION * SESSIONS)
    )
    assert len(grouped.stdout.splitlines()) == PER_SESSION * SESSIONS
    again = checkout(sharded_env, "events", "--group", "billing", "--count", "1")
    assert again.stdout == ""  # every shard's group acknowledged what was printed
    history = checkout(sharded_env, "history", "sh-7", "--json")
    assert history.returncode == 0, history.stderr
    assert len(history.stdout.splitlines()) == PER_SESSION

    # A dead letter on one shard: listed with its shard, purged there.
    client = make_redis_client(shard_urls[1])
    client.lpush(settings.commands_queue, "not a message {")
    client.close()
    deadline = time.monotonic() + DEADLINE
    while not (dead := dlq_entries(sharded_env)):
        assert time.monotonic() < deadline, "the raw message was not dead-lettered"
        time.sleep(0.2)
    assert [entry["shard"] for entry in dead] == [1]
    assert checkout(sharded_env, "dlq", "purge", dead[0]["id"]).returncode == 0
    assert dlq_entries(sharded_env) == []


def stream_ids(url: str, settings) -> list[str]:
    client = make_redis_client(url)
    try:
        return [entry_id for entry_id, _ in client.xrange(settings.events_stream)]
    finally:
        client.close()


def dlq_entries(env: dict[str, str]) -> list[dict]:
    listed = checkout(env, "dlq", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return [json.loads(line) for line in listed.stdout.splitlines()]


def test_a_shard_list_that_disagrees_with_the_shards_is_refused(
    sharded_env, shard_urls, shard_workers, tmp_path
):
    send_one = json.dumps(create("sh-first", "sh-first")) + "\n"
    assert checkout(sharded_env, "send", "-", input=send_one).returncode == 0

    swapped = {**sharded_env, "CHECKOUT_REDIS_URLS": ",".join(reversed(shard_urls))}
    refused = checkout(swapped, "send", "-", input=send_one)
    assert refused.returncode == 2
    assert "the shard list disagrees with the shards" in refused.stderr
    assert len(refused.stderr.splitlines()) == 1
    worker = subprocess.run(
        [CHECKOUT, "worker", "--shard", "0"],
        env={**swapped, "CHECKOUT_REDIS_URL": shard_urls[-1]},
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert worker.returncode == 2 and "checkout shards reset" in worker.stderr

    unchosen = checkout(sharded_env, "worker")
    assert unchosen.returncode == 2 and "--shard 0, --shard 1, --shard 2" in unchosen.stderr
    one_shard_only = checkout(sharded_env, "bench", "--quick")
    assert one_shard_only.returncode == 2 and "reads one Redis" in one_shard_only.stderr
    unknown_shard = checkout(sharded_env, "events", "--after", "5:0")
    assert unknown_shard.returncode == 2 and "there are 3 (0 to 2)" in unknown_shard.stderr

    # Drained: a new list can be recorded.
    deadline = time.monotonic() + DEADLINE
    while json.loads(checkout(sharded_env, "status", "--json").stdout)["totals"]["in_flight"]:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    reset = checkout(swapped, "shards", "reset")
    assert reset.returncode == 0, reset.stderr
    assert checkout(swapped, "send", "-", input=send_one).returncode == 0
