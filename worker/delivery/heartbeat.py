"""Each worker process tells the reaper it is alive, and what it applies, from a thread.

A process that has applied something since its last beat, or is applying now, beats
every `interval`: the reaper takes a running command's owner for dead once its beats
stop for a heartbeat timeout. An idle one beats only every `idle_interval` (still
within the timeout, so `checkout status` counts it): idle workers cost Redis next to
nothing.
"""

from __future__ import annotations

import logging
import threading
import time

from worker.delivery.journal import Journal
from worker.delivery.processor import CommandProcessor
from worker.errors import JournalUnavailable

logger = logging.getLogger("checkout.worker")


class Heartbeat:
    """Tells the reaper this worker process is alive, and what it applies, from a thread."""

    def __init__(
        self,
        journal: Journal,
        processor: CommandProcessor,
        *,
        interval: float,
        idle_interval: float | None = None,
    ) -> None:
        self._journal = journal
        self._processor = processor
        self._interval = interval
        self._idle_interval = max(idle_interval or interval, interval)
        self._stopped = threading.Event()
        self._last_beat = 0.0
        self._claimed_at_beat = -1
        self._idle_at_beat = False  # the last beat named no command

    def start(self) -> None:
        self._beat()
        threading.Thread(target=self._run, name="checkout-heartbeat", daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()

    def due(self) -> bool:
        """Whether this tick beats: busy since the last beat, or idle for long enough."""
        busy = self._processor.applying is not None
        worked = self._processor.claimed != self._claimed_at_beat
        return busy or worked or time.monotonic() - self._last_beat >= self._idle_interval

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            if self.due():
                self._beat()

    def _beat(self) -> None:
        claimed, applying = self._processor.claimed, self._processor.applying
        # Idle since an idle beat: no `busy` mark of ours can be left to clear (a beat
        # naming a command sets the mark whatever `clear` says).
        unchanged = self._idle_at_beat and claimed == self._claimed_at_beat
        try:
            self._journal.heartbeat(self._processor.worker_id, applying, clear=not unchanged)
        except JournalUnavailable as error:  # Redis restarting: the next beat will do
            logger.warning("heartbeat failed: %s", error)
            return
        self._last_beat, self._claimed_at_beat = time.monotonic(), claimed
        self._idle_at_beat = applying is None
