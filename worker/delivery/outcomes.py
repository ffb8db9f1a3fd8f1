"""What one delivery of a command did, as the processor returns it.

A plain string ('applied', 'rejected:<code>', 'dead_lettered', 'retry', or a claim's
verdict 'skip', 'busy', 'park'), so callers and run summaries compare it as text; an
`Outcome` also carries `detail`, one line on why, for what reports it further (the
Celery task state Flower shows: `worker.runtime.task_states`).
"""

from __future__ import annotations


class Outcome(str):
    """An outcome string with a one-line `detail` (no command body: it may carry buyer data)."""

    detail: str

    def __new__(cls, value: str, detail: str = "") -> Outcome:
        outcome = super().__new__(cls, value)
        outcome.detail = detail
        return outcome
