"""One shard's faults stay on that shard: with three real redis-servers and a worker per
shard, SIGKILL of shard 1's worker and a restart of shard 2's Redis (append-only file on)
leave shard 0 serving throughout, and once both are back every command has its result,
in order per session, none lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tasks.embedded.stack import (
    CHECKOUT,
    ManagedProcess,
    redis_server_binary,
    start_redis,
    start_worker,
    stop_all,
)
from tests.e2e.builders import create, update
from tests.faults.conftest import WAIT_SECONDS, wait_for
from worker.delivery.shards import shard_of
from worker.redis_client import make_redis_client

SHARDS = 3
SESSIONS = 90


class Shard:
    """A redis-server that can be restarted on its port and directory."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.server, self.url = start_redis(workdir, appendonly=True)

    def restart(self) -> None:
        self.server.stop()  # SIGTERM: Redis writes its append-only file out first
        port = self.url.rsplit(":", 1)[1].split("/")[0]
        args = [redis_server_binary(), "--port", port, "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "yes", "--dir", str(self.workdir)]
        self.server = ManagedProcess("redis-server", args, log=self.workdir / "redis.log")
        client = make_redis_client(self.url)
        self.server.wait_until(lambda: _answers(client))


def _answers(client) -> bool:
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError):
        return False


@pytest.fixture
def shards(tmp_path: Path) -> Iterator[list[Shard]]:
    made = []
    for n in range(SHARDS):
        (tmp_path / f"redis-{n}").mkdir()
        made.append(Shard(tmp_path / f"redis-{n}"))
    yield made
    stop_all([shard.server for shard in made])


@pytest.fixture
def sharded_env(fault_env, shards, tables, monkeypatch) -> dict[str, str]:
    fault_env["CHECKOUT_REDIS_URLS"] = ",".join(shard.url for shard in shards)
    monkeypatch.setenv("CHECKOUT_REDIS_URLS", fault_env["CHECKOUT_REDIS_URLS"])
    return fault_env


def start_shard_worker(env, shards, n: int, log: Path) -> ManagedProcess:
    return start_worker(
        {**env, "CHECKOUT_REDIS_URL": shards[n].url},
        log=log,
        concurrency=1,
        extra_args=["--shard", str(n)],
    )


def results(shards, settings) -> dict[str, list[dict]]:
    """session id -> its events, from its shard's stream (a Redis down reads as none)."""
    found: dict[str, list[dict]] = {}
    for shard in shards:
        client = make_redis_client(shard.url)
        try:
            entries = client.xrange(settings.events_stream)
        except (redis.ConnectionError, redis.TimeoutError):  # restarting
            continue
        finally:
            client.close()
        for _, fields in entries:
            event = json.loads(fields["event"])
            found.setdefault(event["session_id"], []).append(event)
    return found


def send(env, commands) -> None:
    sent = subprocess.run(
        [CHECKOUT, "send", "-"],
        env=env,
        input="".join(json.dumps(c) + "\n" for c in commands),
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
    )
    assert sent.returncode == 0, sent.stderr


def test_a_shards_worker_killed_and_another_shards_redis_restarted_lose_nothing(
    sharded_env, shards, settings, tmp_path
):
    workers = [start_shard_worker(sharded_env, shards, n, tmp_path / f"w{n}.log") for n in range(3)]
    try:
        sessions = [f"sf-{n}" for n in range(SESSIONS)]
        on = {s: shard_of(s, SHARDS) for s in sessions}
        send(sharded_env, [create(f"{s}-c", s) for s in sessions])
        wait_for(lambda: len(results(shards, settings)) == SESSIONS, what="every create")

        os.killpg(workers[1].pid, signal.SIGKILL)  # shard 1's worker, pool and all
        workers[1].process.wait(timeout=WAIT_SECONDS)
        send(sharded_env, [update(f"{s}-u1", s, currency="EUR") for s in sessions])
        shards[2].restart()  # with its commands queued or in flight

        # Shard 0 never stopped: all of its sessions' updates are applied meanwhile.
        mine = [s for s in sessions if on[s] == 0]
        wait_for(
            lambda: all(len(results(shards, settings).get(s, [])) == 2 for s in mine),
            what="shard 0's updates while shard 1 has no worker",
        )
        assert workers[0].process.poll() is None
        stuck = [s for s in sessions if on[s] == 1]
        assert all(len(results(shards, settings)[s]) == 1 for s in stuck)

        workers[1] = start_shard_worker(sharded_env, shards, 1, tmp_path / "w1-again.log")
        send(sharded_env, [update(f"{s}-u2", s, currency="JPY") for s in sessions])

        def all_done() -> bool:
            found = results(shards, settings)
            return all(len({e["command_id"] for e in found.get(s, [])}) == 3 for s in sessions)

        wait_for(all_done, what="every command's result after the faults")
        found = results(shards, settings)
        for session in sessions:
            applied = [e for e in found[session] if e["type"].startswith("session.")]
            # One result per command, in order; a replayed duplicate repeats its version.
            assert [e["command_id"] for e in applied][:1] == [f"{session}-c"]
            versions = sorted({e["version"] for e in applied})
            assert versions == [1, 2, 3], (session, applied)
            order = list(dict.fromkeys(e["command_id"] for e in applied))
            assert order == [f"{session}-c", f"{session}-u1", f"{session}-u2"]
    finally:
        stop_all(workers)
