"""Every Redis key name the pipeline uses, from the protocol's spec (`protocol.json`).

The per-command and per-session keys are built inside `pipeline.lua` from the same
spec; Python reads a few of them directly (the dead-letter store, run summaries,
heartbeats, the lease, the session copies).
"""

from __future__ import annotations

from worker.delivery.protocol import KEYS


class RedisKeys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def _key(self, name: str, **parts: str) -> str:
        return f"{self.prefix}:{KEYS[name].format(**parts)}"

    @property
    def workers(self) -> str:
        return self._key("workers")

    @property
    def busy(self) -> str:
        return self._key("busy")

    @property
    def reaper_lease(self) -> str:
        return self._key("reaper_lease")

    @property
    def due(self) -> str:
        return self._key("due")

    @property
    def dead_letters(self) -> str:
        return self._key("dead_letters")

    @property
    def dead_letters_evicted(self) -> str:
        return self._key("dead_letters_evicted")

    def dead_letter(self, entry_id: str) -> str:
        return self._key("dead_letter", entry_id=entry_id)

    def journal(self, jid: str) -> str:
        return self._key("journal", jid=jid)

    def session_order(self, session_id: str) -> str:
        return self._key("session", session_id=session_id)

    def session_copy(self, session_id: str) -> str:
        return self._key("session_copy", session_id=session_id)

    def queue_position(self, queue: str) -> str:
        return self._key("queue_position", queue=queue)

    def queued(self, queue: str) -> str:
        return self._key("queued", queue=queue)

    @property
    def queues(self) -> str:
        return self._key("queues")

    def queue_mark(self, queue: str) -> str:
        return self._key("queue_mark", queue=queue)

    def run_outcomes(self, run_id: str) -> str:
        return self._key("run_outcomes", run_id=run_id)

    def run_counts(self, run_id: str) -> str:
        return self._key("run_counts", run_id=run_id)

    def run_examples(self, run_id: str) -> str:
        return self._key("run_examples", run_id=run_id)
