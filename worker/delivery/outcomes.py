"""What one delivery of a command did, as the processor returns it.

A plain string ('applied', 'rejected:<code>', 'dead_lettered', 'retry', or a claim's
verdict 'skip', 'busy', 'park'), so callers and run summaries compare it as text; an
`Outcome` also carries `detail`, one line on why, for what reports it further (the
Celery task state Flower shows: `worker.runtime.task_states`).
"""

from __future__ import annotations

from worker.delivery import jids


class Outcome(str):
    """An outcome string with a one-line `detail` (no command body: it may carry buyer data)."""

    detail: str

    def __new__(cls, value: str, detail: str = "") -> Outcome:
        outcome = super().__new__(cls, value)
        outcome.detail = detail
        return outcome


def task_id_of(jid: str) -> str:
    """The Celery task id of journal entry `jid`'s messages (`task_id_of` in pipeline.lua):
    the jid, or for an entry adopted from a plain `send_task` ('T' + its id, after the
    shard's tag if any: `worker.delivery.jids`) that id."""
    return jids.task_id_of(jid)
