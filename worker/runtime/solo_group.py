"""Several solo worker processes under one parent: parallelism without prefork's hand-off.

`checkout worker --pool solo --concurrency N` forks N processes, each a Celery worker
of the solo pool: it takes its own messages off the queues and applies them itself, so
no message crosses a pipe to a pool process and no result crosses back. The parent only
supervises, as prefork's main process does for its pool: it replaces a process that
dies (SIGKILL, a crash; the journal delivers what it was applying again), passes
SIGTERM, SIGINT and SIGQUIT on, and returns once every process has exited.

Why not `celery multi`: it starts detached workers and leaves their restarts to an init
system, where this keeps `checkout worker` one foreground process, as with prefork.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from types import FrameType

logger = logging.getLogger("checkout.worker")

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
# A process that dies sooner than this after its start (a broken setting, a crash at
# import) is started again after a growing pause, not in a tight loop.
STEADY_SECONDS = 10.0
RESTART_PAUSE_MAX = 10.0
PR_SET_PDEATHSIG = 1


class SoloGroup:
    """`count` processes, each running `start(slot)` (its exit code), kept at `count`."""

    def __init__(self, count: int, start: Callable[[int], int]) -> None:
        self.count = count
        self._start = start
        self._children: dict[int, int] = {}  # pid -> slot
        self._started_at: dict[int, float] = {}  # slot -> when its process started
        self._pauses: dict[int, float] = {}  # slot -> the pause before its next start
        self.stopping: int | None = None  # the signal that asked the group to stop

    def run(self) -> int:
        """Start every process, keep them running until a stop signal, wait for them."""
        previous = {signum: signal.signal(signum, self._on_signal) for signum in FORWARDED}
        try:
            for slot in range(self.count):
                self._spawn(slot)
            while self._children:
                self._reap_one()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return 0

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = signum
        for pid in self._children:
            _send(pid, signum)

    def _reap_one(self) -> None:
        pid, status = os.wait()
        slot = self._children.pop(pid, None)
        if slot is None or self.stopping is not None:
            return
        lived = time.monotonic() - self._started_at[slot]
        pause = self._pause_after(slot, lived)
        logger.warning(
            "solo worker process %d %s after %.1fs: starting another%s",
            pid,
            _how_it_ended(status),
            lived,
            f" in {pause:.1f}s" if pause else "",
        )
        deadline = time.monotonic() + pause
        while self.stopping is None and time.monotonic() < deadline:
            time.sleep(min(0.2, max(deadline - time.monotonic(), 0)))
        if self.stopping is None:
            self._spawn(slot)

    def _pause_after(self, slot: int, lived: float) -> float:
        if lived >= STEADY_SECONDS:
            self._pauses[slot] = 0.0
            return 0.0
        pause = min(max(self._pauses.get(slot, 0.0) * 2, 0.5), RESTART_PAUSE_MAX)
        self._pauses[slot] = pause
        return pause

    def _spawn(self, slot: int) -> None:
        pid = os.fork()
        if pid == 0:
            os._exit(self._child(slot))
        self._children[pid] = slot
        self._started_at[slot] = time.monotonic()

    def _child(self, slot: int) -> int:
        for signum in FORWARDED:
            signal.signal(signum, signal.SIG_DFL)
        _stop_with_parent()
        try:
            return self._start(slot)
        except SystemExit as stop:  # Celery's worker_main ends with sys.exit
            code = stop.code
            return code if isinstance(code, int) else (0 if code is None else 1)
        except BaseException:
            traceback.print_exc()
            return 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()


def _stop_with_parent() -> None:
    """A warm shutdown (SIGTERM) when the parent dies, SIGKILL included (Linux); elsewhere
    the process group is what stops them together."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the call: no signal will come
        os.kill(os.getpid(), signal.SIGTERM)


def _send(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _how_it_ended(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with {os.waitstatus_to_exitcode(status)}"
