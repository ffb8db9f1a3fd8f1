"""The reaper: re-enqueues journaled commands that nobody is working on.

Every worker's main process runs one in a thread; a Redis lease (`SET NX PX`) lets
one of them work at a time, so the work is not multiplied by the number of
workers and a dead worker's reaper is replaced within one lease.

An idle deployment should cost Redis next to nothing, so a tick does the least that
keeps each promise in time:
- every `interval`, the lease holder asks for the first due time of a retry or a
  parked re-check (one ZRANGE, outside the script) and runs a due-only pass when one
  has come;
- every `FULL_EVERY` ticks, a full pass (dead workers, messages lost off the queues,
  the dead-letter store's bounds) renews the lease; a process that does not hold it
  only reads who does (one GET) every `LEASE_CHECK_EVERY` full-pass ticks, and takes
  it when it is free.
"""

from __future__ import annotations

import logging
import threading
import time

from worker.delivery.journal import Journal, ReapPass
from worker.errors import JournalUnavailable
from worker.observability import metrics

logger = logging.getLogger("checkout.reaper")

# Ticks between full passes: with the default 1 s interval, dead workers and lost
# messages are looked for every 5 s (their own timeouts are 10 s and 60 s).
FULL_EVERY = 5
# Full-pass ticks between a non-holder's looks at the lease (which outlives three full
# passes): a dead holder is replaced within 25 s, and idle Redis calls do not grow by
# one every 5 s with each worker process.
LEASE_CHECK_EVERY = 2
CLOCK_SLACK_MS = 50


class Reaper:
    """Runs the journal's reap passes on a schedule while holding the lease."""

    def __init__(self, journal: Journal, *, owner: str, interval: float) -> None:
        self._journal = journal
        self._owner = owner
        self._interval = interval
        # Outlives three full-pass periods: a holder that misses one keeps the lease.
        self._lease_ms = max(int(interval * FULL_EVERY * 3 * 1000), 2000)
        self._stopped = threading.Event()
        self._ticks = 0
        self._holding = False
        self._clock_offset_ms = 0.0  # Redis's clock minus ours, as of the last pass

    def start(self) -> None:
        threading.Thread(target=self._run, name="checkout-reaper", daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()

    def tick(self) -> ReapPass | None:
        """One tick: a full pass, a due-only pass, or nothing (None) when nothing is due
        or another process holds the lease."""
        full = self._ticks % FULL_EVERY == 0
        look = self._holding or self._ticks % (FULL_EVERY * LEASE_CHECK_EVERY) == 0
        self._ticks += 1
        if full and look:
            return self.run_full()
        if self._holding and self._something_due():
            return self._record(self._journal.reap_pass(full=False))
        return None

    def run_full(self) -> ReapPass | None:
        """A full pass if this process holds the lease or it is free; None otherwise."""
        if not self._holding:  # the holder renews in the pass itself
            holder = self._journal.lease_holder()
            if holder is not None and holder != self._owner:
                return None
        done = self._journal.reap_pass(owner=self._owner, lease_ms=self._lease_ms)
        self._holding = done.held
        return self._record(done) if done.held else None

    def _something_due(self) -> bool:
        first = self._journal.earliest_due_ms()
        # The offset is off by up to a round trip: early by CLOCK_SLACK_MS costs one
        # pass that finds nothing, late would cost a tick.
        now = time.time() * 1000 + self._clock_offset_ms
        return first is not None and first <= now + CLOCK_SLACK_MS

    def _record(self, done: ReapPass) -> ReapPass:
        self._clock_offset_ms = done.now_ms - time.time() * 1000
        if done.requeued or done.dead_workers:
            logger.info(
                "re-enqueued %d commands; %d worker processes gone",
                done.requeued,
                done.dead_workers,
            )
        if done.evicted:
            logger.warning("dead-letter store full or old: evicted %d oldest entries", done.evicted)
            metrics.count_dead_letters_evicted(done.evicted)
        return done

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self.tick()
            except JournalUnavailable as error:  # Redis restarting: try again next tick
                logger.warning("reaper: %s", error)
            except Exception:  # a bug here must not stop redelivery for good
                logger.exception("reaper pass failed")
