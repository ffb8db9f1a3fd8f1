"""Where a `checkout up` stack says it is running, so `checkout down` can stop it.

A running `checkout up` keeps two files in its working directory: `up.pid` (its own
PID, from the start) and `up.env` (the `export` lines, once everything is ready).
Both go when it exits. `checkout up --detach` waits for `up.env`; `checkout down`
sends SIGTERM to the PID in `up.pid`, and `checkout up` then stops what it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

PID_FILE = "up.pid"
ENV_FILE = "up.env"
POLL_SECONDS = 0.1


def default_state_dir() -> Path:
    """Where a detached stack keeps its data and logs unless told (`--workdir`):
    `$XDG_STATE_HOME/checkout/up`, by default `~/.local/state/checkout/up`."""
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "checkout" / "up"


def running_pid(workdir: Path) -> int | None:
    """The PID of the `checkout up` running from `workdir`, or None (a stale file is removed)."""
    try:
        pid = int((workdir / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    if _is_checkout_up(pid):
        return pid
    clear(workdir)
    return None


def claim(workdir: Path) -> None:
    """Record this process as the stack running from `workdir`."""
    (workdir / ENV_FILE).unlink(missing_ok=True)
    (workdir / PID_FILE).write_text(f"{os.getpid()}\n")


def announce(workdir: Path, export_lines: list[str]) -> None:
    """Say the stack is ready: its `export` lines (written whole, then renamed)."""
    partial = workdir / (ENV_FILE + ".partial")
    partial.write_text("".join(line + "\n" for line in export_lines))
    partial.replace(workdir / ENV_FILE)


def ready_exports(workdir: Path) -> list[str] | None:
    """The stack's `export` lines once it is ready, else None."""
    try:
        return (workdir / ENV_FILE).read_text().splitlines()
    except OSError:
        return None


def clear(workdir: Path) -> None:
    for name in (PID_FILE, ENV_FILE):
        (workdir / name).unlink(missing_ok=True)


def stop(pid: int, *, timeout: float) -> bool:
    """SIGTERM `pid` (a `checkout up`) and wait for it to exit; whether it did in time."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True


def _is_checkout_up(pid: int) -> bool:
    """Whether `pid` is a live `checkout up` (a PID file can outlive its process, and
    the PID be reused by another)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return _alive(pid) and b"up" in argv and any(a.endswith(b"checkout") for a in argv)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"
