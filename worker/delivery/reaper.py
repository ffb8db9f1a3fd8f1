"""The reaper: re-enqueues journaled commands that nobody is working on.

Every worker's main process runs one in a thread; a Redis lease (`SET NX PX`) lets
one of them work at a time, so the work is not multiplied by the number of
workers and a dead worker's reaper is replaced within one lease.
"""

from __future__ import annotations

import logging
import threading

from worker.delivery.journal import Journal
from worker.errors import JournalUnavailable
from worker.observability import metrics

logger = logging.getLogger("checkout.reaper")


class Reaper:
    """Calls `Journal.reap` every `interval` seconds while holding the lease."""

    def __init__(self, journal: Journal, *, owner: str, interval: float) -> None:
        self._journal = journal
        self._owner = owner
        self._interval = interval
        self._lease_ms = max(int(interval * 8 * 1000), 2000)
        self._stopped = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._run, name="checkout-reaper", daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()

    def run_once(self) -> tuple[int, int, int]:
        """One pass if this process holds (or takes) the lease;
        (re-enqueued, dead workers, dead letters evicted)."""
        requeued, dead, evicted = self._journal.reap(owner=self._owner, lease_ms=self._lease_ms)
        if requeued or dead:
            logger.info("re-enqueued %d commands; %d worker processes gone", requeued, dead)
        if evicted:
            logger.warning("dead-letter store full or old: evicted %d oldest entries", evicted)
            metrics.count_dead_letters_evicted(evicted)
        return requeued, dead, evicted

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self.run_once()
            except JournalUnavailable as error:  # Redis restarting: try again next tick
                logger.warning("reaper: %s", error)
            except Exception:  # a bug here must not stop redelivery for good
                logger.exception("reaper pass failed")
