"""Infrastructure faults under a stream of commands: Redis restarted, DynamoDB cut off
and restored, DynamoDB throttling. After each, the checker classifies every command
from the events and the table: nothing lost, applied twice or out of order.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks.embedded.stack import CHECKOUT, ManagedProcess, free_port, redis_server_binary
from tests.faults.checker import check, read_events, stored_versions, wait_for_outcomes
from tests.faults.conftest import WAIT_SECONDS, wait_for
from tests.faults.fault_proxy import FaultProxy

DEAD = "command.dead_lettered"


def session_commands(sessions: int, updates: int, *, tag: str) -> list[dict]:
    """A create and `updates` cart updates for each of `sessions` sessions, interleaved."""
    ids = [f"{tag}-{n}-{uuid.uuid4().hex[:6]}" for n in range(sessions)]
    commands = [{"type": "create_session", "command_id": f"{s}-c", "session_id": s} for s in ids]
    for step in range(1, updates + 1):
        commands += [update(s, f"{s}-u{step}", quantity=step) for s in ids]
    return commands


def update(session_id: str, command_id: str, *, quantity: int) -> dict:
    item = {"id": "li-1", "type": "product", "title": "Mug", "total_amount": 1200 * quantity}
    return {
        "type": "update_session",
        "command_id": command_id,
        "session_id": session_id,
        "updates": {"line_items": [item]},
    }


def assert_all_applied(verdict, *, replayed: int = 0) -> None:
    print(f"\n{verdict.summary()}")
    verdict.assert_sound()
    assert verdict.applied == verdict.sent, verdict.summary()
    assert verdict.replayed == replayed, verdict.summary()


def count_in_logs(workers, text: str) -> int:
    return sum(w.log.read_text(errors="replace").count(text) for w in workers.started)


# ─── Redis restarted under load ───


class RedisOnPort:
    """A redis-server with an append-only file, stopped (SIGTERM) and restarted on its port."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.restarts = 0
        self.process = self._start()

    def _start(self) -> ManagedProcess:
        args = [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "yes", "--dir", str(self.workdir)]
        process = ManagedProcess("redis-server", args, log=self.workdir / "redis.log")
        process.wait_until(self._answers)
        return process

    def _answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def restart(self) -> None:
        self.process.stop()  # SIGTERM: Redis flushes its append-only file and exits
        self.process = self._start()
        self.restarts += 1


@pytest.fixture
def own_redis(fault_env, monkeypatch, tmp_path: Path) -> Iterator[RedisOnPort]:
    """A Redis of this test's own (the shared one must not restart): workers, producer
    and the event stream all use it."""
    server = RedisOnPort(tmp_path)
    fault_env["CHECKOUT_REDIS_URL"] = server.url
    monkeypatch.setenv("CHECKOUT_REDIS_URL", server.url)
    yield server
    server.process.stop()


def test_redis_restarted_under_load_loses_nothing(own_redis, workers, store):
    from tasks.producer import CommandProducer
    from worker.redis_client import make_redis_client
    from worker.settings import Settings

    settings = Settings()
    client = make_redis_client(settings.redis_url)
    producer = CommandProducer.from_settings(settings)
    workers.start()
    workers.start()
    commands = session_commands(12, 9, tag="redis")
    producer.enqueue_many(commands)

    at_restart = []
    for done in (30, 70):  # two restarts while commands are still in flight
        wait_for(
            lambda n=done: client.xlen(settings.events_stream) >= n,
            what=f"{done} events before restarting Redis",
        )
        at_restart.append(client.xlen(settings.events_stream))
        own_redis.restart()
    assert at_restart[-1] < len(commands), "the load was over before Redis restarted"

    ids = [c["command_id"] for c in commands]
    events = wait_for_outcomes(client, settings.events_stream, ids, timeout=WAIT_SECONDS)
    sessions = {c["session_id"] for c in commands}
    verdict = check(commands, events, stored_versions=stored_versions(store, sessions))
    print(f"\nredis restarts={own_redis.restarts} (events out at each: {at_restart})")
    assert_all_applied(verdict)
    assert len(workers.alive()) == 2, "a worker exited instead of reconnecting"


# ─── DynamoDB behind a proxy ───


@pytest.fixture
def proxy(fault_env: dict[str, str]) -> Iterator[FaultProxy]:
    """DynamoDB behind a fault proxy: workers started after this talk to it."""
    with FaultProxy(fault_env["CHECKOUT_DYNAMODB_ENDPOINT_URL"]) as running:
        fault_env["CHECKOUT_DYNAMODB_ENDPOINT_URL"] = running.url
        yield running


def test_dynamodb_cut_off_dead_letters_then_replay_applies_each_once(
    proxy, workers, producer, redis_client, settings, store, fault_env
):
    workers.start(concurrency=4)  # children mostly wait in retries: more of them, no more CPU
    creates = session_commands(8, 0, tag="cut")
    producer.enqueue_many(creates)
    wait_for_outcomes(redis_client, settings.events_stream, [c["command_id"] for c in creates])
    updates = [update(c["session_id"], f"{c['session_id']}-u1", quantity=2) for c in creates]

    proxy.cut()
    producer.enqueue_many(updates)
    dead = wait_for(
        lambda: _dead_lettered(redis_client, settings, updates),
        what="every update dead-lettered while DynamoDB is cut off",
    )
    assert {e["error"]["code"] for e in dead} == {"retries_exhausted"}, dead
    cut_connections = proxy.counts["cut"]

    proxy.pass_through()
    for _ in range(2):  # a second replay finds nothing left to do
        replay = _checkout(fault_env, "dlq", "replay", "--all")
        assert replay.returncode == 0, replay.stderr
    commands = creates + updates
    events = wait_for_outcomes(
        redis_client, settings.events_stream, [c["command_id"] for c in commands]
    )
    events = _settled(redis_client, settings, len(events))
    sessions = {c["session_id"] for c in commands}
    verdict = check(commands, events, stored_versions=stored_versions(store, sessions))
    print(f"\nDynamoDB cut: connections reset={cut_connections}, dead-lettered={len(dead)}")
    assert_all_applied(verdict, replayed=len(updates))
    assert all(s.version == 2 for s in map(store.load, sessions))


def test_dynamodb_throttling_is_retried_until_applied(
    proxy, workers, producer, redis_client, settings, store
):
    proxy.throttle(0.4)
    workers.start(concurrency=4)
    commands = session_commands(10, 3, tag="throttle")
    producer.enqueue_many(commands)

    ids = [c["command_id"] for c in commands]
    events = wait_for_outcomes(redis_client, settings.events_stream, ids, timeout=WAIT_SECONDS)
    sessions = {c["session_id"] for c in commands}
    verdict = check(commands, events, stored_versions=stored_versions(store, sessions))
    journal_retries = count_in_logs(workers, "retrying in")
    print(
        f"\nthrottling at 40%: requests throttled={proxy.counts['throttled']}, "
        f"forwarded={proxy.counts['forwarded']}, journal retries={journal_retries}"
    )
    assert_all_applied(verdict)
    assert verdict.dead_lettered == 0
    assert proxy.counts["throttled"] > 0


def _dead_lettered(redis_client, settings, commands: list[dict]) -> list[dict]:
    wanted = {c["command_id"] for c in commands}
    events = read_events(redis_client, settings.events_stream)
    dead = [e for e in events if e["type"] == DEAD and e["command_id"] in wanted]
    return dead if {e["command_id"] for e in dead} == wanted else []


def _settled(redis_client, settings, count: int) -> list[dict]:
    """The stream once the worker is idle: a replayed duplicate would show up by now."""
    from worker.delivery.journal import in_flight_count
    from worker.delivery.keys import RedisKeys

    keys = RedisKeys(settings.key_prefix)
    wait_for(lambda: in_flight_count(redis_client, keys) == 0, what="an empty journal")
    return read_events(redis_client, settings.events_stream)


def _checkout(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHECKOUT, *args], env=env, capture_output=True, text=True, timeout=WAIT_SECONDS
    )
