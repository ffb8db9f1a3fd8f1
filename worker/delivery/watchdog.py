"""A time limit for one command, for the commands of a batched message.

Celery's time limit is per message, so a batched message gets as many commands' limit
as it may carry (`worker.runtime.app`): one stuck command would hold its pool process,
and the message's later commands, that many times longer than a command of its own
message. `time_limit` gives each command its own limit with an interval timer
(SIGALRM) in the pool process, as Celery's soft time limit does with SIGUSR1: the
command's attempt fails with `CommandTimeLimitExceeded`, and the processor retries
it and then dead-letters it like any other failure. Code that holds the GIL without
returning to Python is out of a signal's reach: Celery's per-message limit stays as
the backstop.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from worker.errors import CommandTimeLimitExceeded


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise `CommandTimeLimitExceeded` in the block once it has run `seconds`.

    Only in a process's main thread (where Python delivers signals; a Celery pool
    process runs its tasks there); elsewhere, or with `seconds` <= 0, no limit. An
    alarm landing just as the block ends fails an attempt that did its work: harmless,
    the retry finds the command in the session's ledger and publishes its event again.
    """
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(_signum: int, _frame: FrameType | None) -> None:
        raise CommandTimeLimitExceeded(seconds)

    previous = signal.signal(signal.SIGALRM, expired)
    earlier, interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if earlier:  # someone's timer (pytest-timeout's, say): re-armed with what it had left
            left = max(earlier - (time.monotonic() - started), 0.001)
            signal.setitimer(signal.ITIMER_REAL, left, interval)
