"""Each worker process tells the reaper it is alive, and what it applies, from a thread."""

from __future__ import annotations

import logging
import threading

from worker.delivery.journal import Journal
from worker.delivery.processor import CommandProcessor
from worker.errors import JournalUnavailable

logger = logging.getLogger("checkout.worker")


class Heartbeat:
    """Tells the reaper this worker process is alive, and what it applies, from a thread."""

    def __init__(self, journal: Journal, processor: CommandProcessor, *, interval: float) -> None:
        self._journal = journal
        self._processor = processor
        self._interval = interval
        self._stopped = threading.Event()

    def start(self) -> None:
        self._beat()
        threading.Thread(target=self._run, name="checkout-heartbeat", daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            self._beat()

    def _beat(self) -> None:
        try:
            self._journal.heartbeat(self._processor.worker_id, self._processor.applying)
        except JournalUnavailable as error:  # Redis restarting: the next beat will do
            logger.warning("heartbeat failed: %s", error)
