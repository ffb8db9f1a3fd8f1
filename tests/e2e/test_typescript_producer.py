"""The TypeScript producer (clients/typescript) against real workers, next to the Python one.

Both run the same enqueue script (worker/delivery/pipeline.lua), so commands from either land
in one per-session order. The node side is the compiled package (`make ts-client`
builds it; `make test` depends on that).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasks.embedded.stack import redis_server_binary
from tasks.producer import CommandProducer
from tests.e2e.builders import create, update
from worker.delivery.journal import Journal, Pending, in_flight_count
from worker.delivery.keys import RedisKeys

PACKAGE = Path(__file__).resolve().parents[2] / "clients" / "typescript"
INTERLEAVE = PACKAGE / "dist" / "test" / "interleave.js"
SESSIONS = 20
ROUNDS = 6
# What differs between two enqueues of one command: ids derived from the jid, times.
MESSAGE_IDS = {"id", "root_id", "correlation_id", "delivery_tag"}
ENTRY_PER_ENQUEUE = {"enq", "seq", "qpos", "pj"}  # pj: the jid before it in the session


def node_command(*args: str) -> list[str]:
    """node running the compiled package (built by `make ts-client`)."""
    assert INTERLEAVE.exists(), f"{INTERLEAVE} missing: run `make ts-client` first"
    executable = shutil.which("node")
    assert executable, "node is not on PATH"
    return [executable, *args]


class TypeScriptProducer:
    """One node process of test/interleave.js: a JSON array of commands in, a count out."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            node_command(str(INTERLEAVE)),
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def enqueue(self, commands: list[dict[str, Any]]) -> None:
        """Returns once node has enqueued them all (or fails with node's stderr)."""
        self.process.stdin.write(json.dumps(commands) + "\n")
        self.process.stdin.flush()
        reply = self.process.stdout.readline()
        assert reply, f"node producer died: {self.process.stderr.read()}"
        assert json.loads(reply) == {"enqueued": len(commands)}

    def close(self) -> None:
        self.process.stdin.close()
        assert self.process.wait(timeout=60) == 0, self.process.stderr.read()


@pytest.fixture
def ts_producer(env) -> Iterator[TypeScriptProducer]:
    producer = TypeScriptProducer(env)
    yield producer
    if producer.process.poll() is None:
        producer.close()


def line_item(round_: int) -> dict[str, Any]:
    return {"id": f"li-{round_}", "type": "product", "total_amount": 100 * round_, "ts": round_}


def step(session_id: str, round_: int) -> dict[str, Any]:
    command_id = f"{session_id}-r{round_}"
    if round_ == 0:
        return create(command_id, session_id)
    return update(command_id, session_id, line_items=[line_item(round_)])


def test_typescript_and_python_producers_interleave_on_the_same_sessions(
    start_workers, settings, events, store, ts_producer
):
    start_workers(2, concurrency=2)
    python = CommandProducer.from_settings(settings)
    sessions = [f"s-mix-{index}" for index in range(SESSIONS)]
    # Round by round, each session's command comes alternately from Python and from
    # TypeScript; workers apply earlier rounds while later ones are being sent.
    for round_ in range(ROUNDS):
        by_python = [(index + round_) % 2 == 0 for index in range(SESSIONS)]
        pairs = list(zip(sessions, by_python, strict=True))
        python.enqueue_many([step(session, round_) for session, py in pairs if py])
        ts_producer.enqueue([step(session, round_) for session, py in pairs if not py])

    received = events(SESSIONS * ROUNDS, timeout=120)
    last = ROUNDS - 1
    for session_id in sessions:
        own = [event for event in received if event["session_id"] == session_id]
        assert [e["command_id"] for e in own] == [f"{session_id}-r{r}" for r in range(ROUNDS)]
        assert [e["type"] for e in own] == ["session.created"] + ["session.updated"] * last
        assert [e["version"] for e in own] == list(range(1, ROUNDS + 1))
        stored = store.load(session_id)
        assert stored.version == ROUNDS
        items = stored.session.model_dump()["line_items"]
        assert [(i["id"], i["total_amount"], i["ts"]) for i in items] == [
            (f"li-{last}", 100 * last, last)
        ]


def test_typescript_enqueues_what_python_enqueues(settings, redis_client, ts_producer):
    """Same command from both producers: same Celery message and journal entry, ids aside."""
    commands = [
        create("same-1", "s-same", currency="EUR"),
        update("same-2", "s-same", line_items=[line_item(1)], buyer={"email": None, "x": [1]}),
        {"type": "create_session", "command_id": "same-3"},
    ]
    python = CommandProducer.from_settings(settings)
    for command in commands:
        python.enqueue(command)
        ts_producer.enqueue([command])

    queued = reversed(redis_client.lrange(settings.commands_queue, 0, -1))
    seen = [comparable(json.loads(message), redis_client, settings) for message in queued]
    assert len(seen) == 2 * len(commands)
    assert seen[::2] == seen[1::2]
    assert [view["command"] for view in seen[::2]] == commands
    # One order per session whoever sent: Python's took sequence 1, TypeScript's 2, ...
    assert redis_client.hget(f"{settings.key_prefix}:s:s-same", "next") == "4"


def comparable(message: dict[str, Any], redis_client, settings) -> dict[str, Any]:
    """A queued message and its journal entry without what differs per enqueue."""
    (command,), meta, options = json.loads(message["body"])
    entry = redis_client.hgetall(f"{settings.key_prefix}:j:{meta['jid']}")
    journal = {name: value for name, value in entry.items() if name not in ENTRY_PER_ENQUEUE}
    # Python writes pydantic's field order, TypeScript the caller's: same JSON value.
    journal["cmd"] = json.loads(journal["cmd"])
    return {
        "command": command,
        "options": options,
        "headers": _without(message["headers"], MESSAGE_IDS),
        "properties": _without(message["properties"], MESSAGE_IDS),
        "envelope": _without(message, {"body", "headers", "properties"}),
        "journal": journal,
    }


def _without(mapping: dict[str, Any], names: set[str]) -> dict[str, Any]:
    return {name: value for name, value in mapping.items() if name not in names}


def test_typescript_unit_tests_pass(env):
    """node's own tests of the package (validation, batching, NOSCRIPT), on a redis-server
    of their own: they flush Redis's script cache, which the shared one must keep."""
    tests = sorted(str(path) for path in (PACKAGE / "dist" / "test").glob("*.test.js"))
    assert tests, "no compiled node tests: run `make ts-client`"
    result = subprocess.run(
        node_command("--test", *tests),
        env={**env, "REDIS_SERVER": redis_server_binary()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout and "# pass 0" not in result.stdout, result.stdout


@pytest.mark.parametrize("per_message", [1, 3])
@pytest.mark.parametrize(("shards", "shard"), [(1, 0), (3, 2)])
def test_python_and_typescript_send_identical_enqueue_arguments(
    env, redis_client, per_message, shards, shard
) -> None:
    """Both producers build the script call from protocol.json's argument names: for the
    same command texts, run and queue, the ARGV each would send is the same, byte for
    byte (a text goes as it came from both; a dict is laid out in each language's order),
    and to shard K of several both send its tag (`shard_tag`), which starts every jid."""
    from tasks.producer import prepare
    from worker.delivery.journal import Journal
    from worker.settings import Settings

    commands = [
        create("cs-args-1", "args-c1"),
        update("cs-args-1", "args-u1", buyer={"email": "zoë@example.com"}),
        {"type": "create_session", "command_id": "args-c2", "currency": "JPY"},  # no session
    ]
    urls = [f"redis://127.0.0.1:{port}/0" for port in range(6390, 6390 + shards)]
    request = {
        "commands": commands,
        "runId": "run-args",
        "perMessage": per_message,
        "redisUrls": urls,
        "shard": shard,
    }
    node = subprocess.run(
        node_command(str(PACKAGE / "dist" / "test" / "enqueue_args.js")),
        input=json.dumps(request),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    settings = Settings(redis_urls=",".join(urls)).for_shard(shard)
    journal = Journal(redis_client, settings)  # builds arguments only: no call is made
    texts = [json.dumps(c, separators=(",", ":"), ensure_ascii=False) for c in commands]
    batch = [prepare(text) for text in texts]
    op = "enqueue_batched" if per_message > 1 else "enqueue"
    python = [
        op,
        settings.key_prefix,
        *journal.enqueue_args(settings.commands_queue, batch, "run-args", per_message),
    ]

    assert json.loads(node.stdout) == [str(arg) for arg in python]
    assert settings.shard_tag == ("" if shards == 1 else f"s{shard}")
    assert settings.shard_tag in python


def test_a_lone_surrogate_id_sent_around_the_producers_ends_in_one_rejection(
    start_workers, events, redis_client, settings
):
    """JavaScript strings may hold lone surrogates, which UTF-8 cannot. The TypeScript
    producer refuses such an id (its unit tests, run above); a client that calls the
    enqueue script itself gets one rejection for it, and the session goes on."""
    journal = Journal(redis_client, settings)
    commands = [create("\ud800", "cs-surrogate"), create("c-after-surrogate", "cs-surrogate")]
    # json.dumps escapes the surrogate, as JSON.stringify does; the id argument is what
    # ioredis sends for it (U+FFFD).
    pending = [Pending(json.dumps(c), c["command_id"], "cs-surrogate") for c in commands]
    pending[0] = Pending(pending[0].text, "\ufffd", "cs-surrogate")
    journal.enqueue([pending], queue=settings.commands_queue)
    start_workers(1)
    first, second = events(2)

    assert (first["type"], first["error"]["code"]) == ("command.rejected", "validation_error")
    assert first["command_id"] == "\ud800"
    assert (second["command_id"], second["type"]) == ("c-after-surrogate", "session.created")
    assert in_flight_count(redis_client, RedisKeys(settings.key_prefix)) == 0  # nothing in flight
