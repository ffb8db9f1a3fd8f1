"""`checkout up` started as a user would, used from "another shell", stopped with Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path

from tasks.embedded.stack import CHECKOUT

DEADLINE_SECONDS = 120.0


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (its services and the worker's pool)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue  # gone meanwhile
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        children = {child for child, ppid in parents.items() if ppid == parent}
        found |= children
        todo.extend(children)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def read_exports(up: subprocess.Popen[str]) -> dict[str, str]:
    """The `export NAME=value` lines, read until the Redis URL (the last one) arrives."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in up.stdout], daemon=True).start()
    exports: dict[str, str] = {}
    deadline = time.monotonic() + DEADLINE_SECONDS
    while "CHECKOUT_REDIS_URL" not in exports:
        assert up.poll() is None, f"checkout up exited with {up.returncode}"
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            raise AssertionError(f"no export lines after {DEADLINE_SECONDS}s") from None
        name, _, value = line.strip().removeprefix("export ").partition("=")
        exports[name] = value
    return exports


def first_event(env: dict[str, str]) -> dict:
    """Poll `checkout events` (no --follow: it waits for one event past --count)."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        read = subprocess.run(
            [CHECKOUT, "events", "--count", "1"],
            env=env,
            capture_output=True,
            text=True,
            timeout=DEADLINE_SECONDS,
        )
        assert read.returncode == 0, read.stderr
        if read.stdout.strip():
            return json.loads(read.stdout)
        assert time.monotonic() < deadline, "no event from the worker `checkout up` started"
        time.sleep(0.2)


def clean_shell(tmp_path: Path) -> dict[str, str]:
    """A user's shell: no pipeline settings, temporary files and state under `tmp_path`."""
    shell = {k: v for k, v in os.environ.items() if not k.startswith(("CHECKOUT_", "AWS_"))}
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return {**shell, "TMPDIR": str(tmp_path / "tmp"), "XDG_STATE_HOME": str(tmp_path / "state")}


def send_one(env: dict[str, str], command_id: str) -> None:
    command = {"type": "create_session", "command_id": command_id, "session_id": f"s-{command_id}"}
    sent = subprocess.run(
        [CHECKOUT, "send", "-"],
        env=env,
        input=json.dumps(command) + "\n",
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
    )
    assert sent.returncode == 0, sent.stderr


def wait_gone(pids: set[int]) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in pids if alive(pid)]


def test_up_serves_another_shell_shows_the_worker_and_stops_everything_on_ctrl_c(tmp_path):
    shell = clean_shell(tmp_path)
    up = subprocess.Popen(
        [CHECKOUT, "up", "--concurrency", "1"],  # no --workdir: a temporary one
        env=shell,
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "up.err").open("w"),
        text=True,
    )
    try:
        exports = read_exports(up)
        started = descendants(up.pid)
        other_shell = {**shell, **exports}
        (workdir,) = (tmp_path / "tmp").glob("checkout-up-*")
        assert (workdir / "up.pid").read_text().strip() == str(up.pid)
        send_one(other_shell, "up-1")
        assert first_event(other_shell)["type"] == "session.created"

        up.send_signal(signal.SIGINT)
        assert up.wait(DEADLINE_SECONDS) == 0
    finally:
        if up.poll() is None:  # the test failed before Ctrl-C: leave no orphans behind
            left = descendants(up.pid)
            up.kill()
            up.wait()
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    # redis-server, moto server and the worker at least (a solo worker of one process
    # applies commands itself; a prefork one adds its pool process).
    assert len(started) >= 3, started
    wait_gone(started)
    assert {"AWS_DEFAULT_REGION", "CHECKOUT_DYNAMODB_ENDPOINT_URL"} <= set(exports)
    # The worker's own lines, prefixed, in the `up` terminal; its directory is gone.
    shown = (tmp_path / "up.err").read_text()
    assert "worker | " in shown and "ready." in shown, shown
    assert not workdir.exists()


def test_up_detach_returns_once_ready_and_down_stops_it(tmp_path):
    shell = clean_shell(tmp_path)
    detached = subprocess.run(
        [CHECKOUT, "up", "--detach", "-c", "1"],
        env=shell,
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS * 2,
    )
    assert detached.returncode == 0, detached.stderr
    workdir = tmp_path / "state" / "checkout" / "up"  # the documented default
    pid = int((workdir / "up.pid").read_text())
    started = descendants(pid)
    try:
        exports = dict(
            line.removeprefix("export ").split("=", 1) for line in detached.stdout.splitlines()
        )
        assert "checkout down" in detached.stderr
        other_shell = {**shell, **exports}
        send_one(other_shell, "up-detached")
        assert first_event(other_shell)["type"] == "session.created"

        again = subprocess.run(
            [CHECKOUT, "up", "--detach"], env=shell, capture_output=True, text=True, timeout=60
        )
        assert again.returncode == 1
        assert f"a stack already runs from {workdir} (pid {pid})" in again.stderr

        down = subprocess.run(
            [CHECKOUT, "down"], env=shell, capture_output=True, text=True, timeout=DEADLINE_SECONDS
        )
        assert down.returncode == 0, down.stderr
        assert f"stopped the stack from {workdir} (pid {pid})" in down.stdout
        wait_gone({pid, *started})
        assert not (workdir / "up.pid").exists() and (workdir / "worker.log").exists()
        idle = subprocess.run([CHECKOUT, "down"], env=shell, capture_output=True, text=True)
        assert (idle.returncode, idle.stdout.strip()) == (0, f"nothing runs from {workdir}")
    finally:
        for leftover in {pid, *started}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(leftover, signal.SIGKILL)
