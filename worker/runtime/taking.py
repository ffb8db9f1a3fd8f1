"""Take a message and claim it in one round trip, from kombu's event loop (solo pool).

kombu's Redis transport waits for a message with BRPOP, the worker then claims its
journal entry, applies the command and finishes it: three round trips a command, each
one waking Redis. Under a backlog nothing needs waiting for: `take` (pipeline.lua)
pops the next message and claims it in the same call, and it goes in the finish's
round trip, pipelined behind it (`Journal.take_after_finish`): one round trip a
command. The transport (`worker.runtime.transport.Channel`) delivers the message a
finish took; without one, it sends a take instead of a BRPOP while the queues are
known to hold more (the last command claimed had waited there at least `BACKLOG_MS`,
or the last take found a message), and goes back to BRPOP once a take finds nothing.

Only under Celery's solo pool: the claim must be made by the process that applies the
command, and under prefork that is not the one reading the queues.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from worker.delivery.journal import Journal
from worker.delivery.processor import CommandProcessor
from worker.errors import JournalUnavailable

logger = logging.getLogger("checkout.worker")

# A claimed command that waited this long (enqueue to claim, Redis's clock) says its
# queue has a backlog: the next poll takes instead of waiting. Below it, a take would
# most likely find nothing (one round trip for nothing).
BACKLOG_MS = 20


class Taker:
    """Builds this process's `take` calls and reads their replies."""

    def __init__(self, journal: Journal, worker_id: str, *, with_copy: bool) -> None:
        self._journal = journal
        self._worker_id = worker_id
        self._with_copy = with_copy

    @classmethod
    def of(cls, processor: CommandProcessor) -> Taker:
        """Taking for `processor`'s claims (its worker id, its session copies)."""
        return cls(processor.journal, processor.worker_id, with_copy=processor.claims_copies)

    def arm(self, queue_keys: Sequence[str]) -> None:
        """Before a delivery: the finish of its command may take the next message of
        `queue_keys`, if that command had waited in its queue (`after_finish`)."""
        keys = list(queue_keys)

        def next_take() -> list[Any] | None:
            self._journal.take_after_finish = None  # once: a batch's later finishes do not
            if not self.backlogged():
                return None
            return self._journal.take_args(self._worker_id, keys, with_copy=self._with_copy)

        self._journal.take_after_finish = next_take
        self._journal.after_finish = None

    def after_finish(self) -> tuple[bool, tuple[str, bytes] | None]:
        """After a delivery: (whether its finish sent a take, what the take found:
        (queue key, message) or None when the queues were empty or Redis refused it)."""
        self._journal.take_after_finish = None
        reply, self._journal.after_finish = self._journal.after_finish, None
        if reply is None:
            return False, None
        if isinstance(reply, Exception):
            self.refused(reply)
            return True, None
        return True, self.took(reply)

    def command(self, queue_keys: Sequence[str]) -> list[Any]:
        return self._journal.take_command(self._worker_id, queue_keys, with_copy=self._with_copy)

    def took(self, reply: Sequence[Any]) -> tuple[str, bytes] | None:
        """(queue key, message) of a take's reply, None when the queues were empty."""
        return self._journal.took(reply, self._worker_id)

    def refused(self, error: BaseException) -> None:
        """Redis answered a take with an error: nothing was taken if the script was
        missing (loaded again here); for anything else the journal brings back what a
        failed take may have popped (`reap` in pipeline.lua)."""
        try:
            if self._journal.script_missing(error):
                return
        except JournalUnavailable as unavailable:
            error = unavailable
        logger.warning("take refused, waiting on BRPOP instead: %s", error)

    def backlogged(self) -> bool:
        """Whether the command this process claimed last had waited in its queue."""
        claim = self._journal.last_claim
        if claim is None or claim.verdict != "go" or not claim.enqueued_ms:
            return False
        return claim.claimed_ms - claim.enqueued_ms >= BACKLOG_MS
