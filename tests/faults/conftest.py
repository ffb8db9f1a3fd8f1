"""Fault-injection fixtures: real `checkout worker` processes with short failure timings,
which the tests SIGKILL (one pool child or the whole worker) and restart.

Every test here carries the `faults` marker (`make test-faults`). The timings are
small so that a dead worker's command comes back in seconds, not minutes: the
reaper looks every 0.2 s, a worker process silent for 3 s is dead, an unclaimed
message is re-enqueued after 5 s, and a failing command is dead-lettered after
3 retries of at most 2 s each.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tasks.embedded.stack import ManagedProcess, start_worker
from tests.support.processes import running
from worker.delivery.journal import in_flight_jids
from worker.delivery.keys import RedisKeys

HERE = Path(__file__).parent
FAULT_TIMINGS = {
    "CHECKOUT_VISIBILITY_TIMEOUT": "5",
    "CHECKOUT_HEARTBEAT_TIMEOUT": "3",
    "CHECKOUT_MAX_RETRIES": "3",
    "CHECKOUT_RETRY_BACKOFF_MAX": "2",
    "CHECKOUT_REAP_INTERVAL": "0.2",
}
# The machine is shared: generous, but every wait polls and ends as soon as it can.
WAIT_SECONDS = 120.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.faults)


@pytest.fixture
def fault_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The test's environment with the short failure timings, for workers and this process."""
    for name, value in FAULT_TIMINGS.items():
        monkeypatch.setenv(name, value)
    env.update(FAULT_TIMINGS)
    return env


@pytest.fixture
def settings(fault_env):
    """Overrides the shared fixture so the test process's journal uses the same timings."""
    from worker.settings import Settings

    return Settings()


def children(pid: int) -> list[int]:
    """The direct children of `pid` (a worker's prefork pool processes)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.update(int(c) for c in (task / "children").read_text().split())
        except OSError:  # the thread ended while we looked
            continue
    if not found:  # kernels without CONFIG_PROC_CHILDREN
        listing = subprocess.run(
            ["ps", "--ppid", str(pid), "-o", "pid="], capture_output=True, text=True, check=False
        )
        found.update(int(p) for p in listing.stdout.split())
    return sorted(found)


def wait_for(predicate, *, what: str, timeout: float = WAIT_SECONDS, interval: float = 0.05):
    """Poll `predicate` until it returns something truthy; fail the test with `what` after."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def running_commands(client: Any, key_prefix: str) -> dict[int, str]:
    """Pid -> command id of the worker processes applying a command right now: the
    journal's running entries by owner (worker id `host:pid:nonce`), which a claim writes
    at once (the `busy` hash names a command only from its worker's next heartbeat)."""
    keys = RedisKeys(key_prefix)
    pipe = client.pipeline(transaction=False)
    for jid in in_flight_jids(client, keys):
        pipe.hmget(keys.journal(jid), "st", "own", "cid")
    found = {}
    for state, owner, command_id in pipe.execute():
        if state == "running" and owner:
            found[int(owner.rsplit(":", 2)[1])] = command_id
    return found


def busy_pids(client: Any, key_prefix: str) -> set[int]:
    """Pids of worker processes applying a command right now: a SIGKILL of one lands
    mid-command."""
    return set(running_commands(client, key_prefix))


class Workers:
    """`checkout worker` processes of one test: start, SIGKILL (child or whole), restart."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self._env = env
        self._logs = logs
        self.started: list[ManagedProcess] = []
        self.kills: list[str] = []
        self.killed: set[int] = set()

    def start(self, *, concurrency: int = 2, pool: str | None = None) -> ManagedProcess:
        """A new worker, returned once it answers a ping and its processes are up: a
        prefork pool, or a group of solo processes (`pool`; default: the environment's).
        A solo worker of one process has none: it applies commands itself."""
        log = self._logs / f"worker-{len(self.started)}.log"
        extra = ["--pool", pool] if pool else []
        worker = start_worker(
            self._env, log=log, concurrency=concurrency, loglevel="INFO", extra_args=extra
        )
        self.started.append(worker)
        solo = (pool or self._env.get("CHECKOUT_WORKER_POOL")) == "solo"
        if not (solo and concurrency == 1):
            wait_for(
                lambda: len(children(worker.pid)) >= concurrency,
                what=f"{concurrency} processes of worker {worker.pid}",
            )
        return worker

    def alive(self) -> list[ManagedProcess]:
        return [w for w in self.started if w.process.poll() is None]

    def kill_child(
        self, worker: ManagedProcess, *, among: Callable[[], set[int]] | None = None
    ) -> int:
        """SIGKILL one live pool process of `worker` (Celery's main process replaces it);
        with `among`, one of the pids it returns (waiting until one is a child). Returns
        once the dead child is gone from the pool."""

        def candidates() -> list[int]:
            pool = [pid for pid in children(worker.pid) if pid not in self.killed and running(pid)]
            return [pid for pid in pool if pid in among()] if among else pool

        victim = wait_for(candidates, what=f"a matching child of worker {worker.pid}")[0]
        os.kill(victim, signal.SIGKILL)
        self.killed.add(victim)
        self.kills.append(f"child {victim} of {worker.pid}")
        wait_for(
            lambda: victim not in children(worker.pid),
            what=f"worker {worker.pid} to reap its child {victim}",
        )
        return victim

    def kill_worker(self, worker: ManagedProcess) -> None:
        """SIGKILL the whole worker: its main process and every child (one process group)."""
        os.killpg(worker.pid, signal.SIGKILL)  # start_worker uses start_new_session=True
        worker.process.wait(timeout=WAIT_SECONDS)
        self.kills.append(f"worker {worker.pid}")

    def restart(
        self, worker: ManagedProcess, *, concurrency: int = 2, pool: str | None = None
    ) -> ManagedProcess:
        """SIGKILL `worker` whole and start a replacement."""
        self.kill_worker(worker)
        return self.start(concurrency=concurrency, pool=pool)

    def stop_all(self) -> None:
        """SIGKILL every worker's process group: the test has checked what it wanted, and
        a warm shutdown (seconds per worker) would prove nothing more here."""
        for worker in self.started:
            _kill_group(worker.pid)
        for worker in self.started:
            worker.stop()


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


@pytest.fixture
def workers(fault_env, tables, tmp_path: Path) -> Iterator[Workers]:
    """Start workers with `workers.start()`; all are stopped (by PID) after the test."""
    pool = Workers(fault_env, tmp_path)
    yield pool
    pool.stop_all()


@pytest.fixture
def producer(settings, tables):
    """The producer API on the test's interactive queue (sequence numbers, journal)."""
    from tasks.producer import CommandProducer

    return CommandProducer.from_settings(settings)
