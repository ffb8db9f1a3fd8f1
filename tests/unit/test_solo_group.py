"""The solo pool's process group (`worker.runtime.solo_group`), with real forked processes
running a stand-in for a Celery worker: it keeps its count, passes a stop on, and waits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.processes import running

# The group's parent: each process writes its pid into `<dir>/<slot>.<pid>` and waits for
# a signal, as a Celery worker does between messages.
GROUP = """
import os, signal, sys
from pathlib import Path
from worker.runtime.solo_group import SoloGroup

where = Path(sys.argv[1])

def start(slot):
    (where / f"{slot}.{os.getpid()}").touch()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))  # a warm shutdown's own code
    while True:
        signal.pause()

sys.exit(SoloGroup(int(sys.argv[2]), start).run())
"""


def started(where: Path) -> dict[int, int]:
    """pid -> slot of every process the group has started so far."""
    return {int(p.name.split(".")[1]): int(p.name.split(".")[0]) for p in where.iterdir()}


def wait_until(predicate, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
    return value


@pytest.fixture
def group(tmp_path: Path):
    parent = subprocess.Popen([sys.executable, "-c", GROUP, str(tmp_path), "2"])
    yield parent, tmp_path
    if parent.poll() is None:
        parent.kill()
        parent.wait()
    for pid in started(tmp_path):
        if running(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_process_that_dies_is_replaced_in_its_slot(group):
    parent, where = group
    first = wait_until(lambda: len(started(where)) == 2 and started(where), "two processes")
    victim = next(pid for pid, slot in first.items() if slot == 1)

    os.kill(victim, signal.SIGKILL)

    now = wait_until(lambda: len(started(where)) == 3 and started(where), "a replacement")
    (replacement,) = set(now) - set(first)
    assert now[replacement] == 1  # the dead one's slot, so its node name comes back
    assert running(replacement) and not running(victim)
    assert parent.poll() is None


def test_a_stop_signal_reaches_every_process_and_the_group_waits_for_them(group):
    parent, where = group
    pids = wait_until(lambda: len(started(where)) == 2 and started(where), "two processes")

    parent.send_signal(signal.SIGTERM)

    assert parent.wait(timeout=20) == 0
    assert not any(running(pid) for pid in pids)
    assert len(started(where)) == 2  # nobody was started again while stopping


def test_the_processes_stop_when_their_parent_is_killed(group):
    parent, where = group
    pids = wait_until(lambda: len(started(where)) == 2 and started(where), "two processes")

    parent.kill()  # SIGKILL: no chance to pass anything on
    parent.wait()

    wait_until(lambda: not any(running(pid) for pid in pids), "the orphans to stop")
