"""`worker.delivery.watchdog.time_limit`: one command's time limit inside a batched message."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from worker.delivery.watchdog import time_limit
from worker.errors import CommandTimeLimitExceeded


def spin(seconds: float) -> None:
    """Busy Python code that never returns by itself in time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass


def test_a_block_past_its_limit_is_stopped_with_the_limit_named() -> None:
    started = time.monotonic()
    with pytest.raises(CommandTimeLimitExceeded, match=r"time limit of 0\.2s"), time_limit(0.2):
        spin(30)
    assert time.monotonic() - started < 10


def test_a_blocking_call_past_its_limit_is_stopped_too() -> None:
    with pytest.raises(CommandTimeLimitExceeded), time_limit(0.2):
        threading.Event().wait(30)


@pytest.fixture
def own_timer():
    """An interval timer and SIGALRM handler of someone else's, as pytest-timeout arms."""
    fired: list[int] = []
    handler = signal.signal(signal.SIGALRM, lambda signum, _frame: fired.append(signum))
    timer = signal.setitimer(signal.ITIMER_REAL, 0)
    yield fired
    signal.setitimer(signal.ITIMER_REAL, *timer)
    signal.signal(signal.SIGALRM, handler)


def test_after_the_block_the_timer_and_handler_before_it_are_back(own_timer) -> None:
    mine = signal.getsignal(signal.SIGALRM)
    with time_limit(5):
        assert signal.getsignal(signal.SIGALRM) is not mine
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)  # none before: none after
    assert signal.getsignal(signal.SIGALRM) is mine

    signal.setitimer(signal.ITIMER_REAL, 100)
    with time_limit(5):
        assert signal.getitimer(signal.ITIMER_REAL)[0] <= 5
    assert 99 < signal.getitimer(signal.ITIMER_REAL)[0] <= 100
    assert own_timer == []


def test_outside_the_main_thread_there_is_no_limit(own_timer) -> None:
    seen: list[object] = []

    def run() -> None:
        with time_limit(0.05):
            seen.append(signal.getitimer(signal.ITIMER_REAL))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen == [(0.0, 0.0)]
