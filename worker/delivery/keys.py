"""Every Redis key name the pipeline uses, in one place (the Lua script mirrors them).

The per-command and per-session keys are built inside `pipeline.lua`; Python reads a
few of them directly (the dead-letter store, run summaries, heartbeats, the lease).
"""

from __future__ import annotations


class RedisKeys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    @property
    def workers(self) -> str:
        return self._key("workers")

    @property
    def reaper_lease(self) -> str:
        return self._key("reaper")

    @property
    def due(self) -> str:
        return self._key("due")

    @property
    def dead_letters(self) -> str:
        return self._key("dlq")

    def dead_letter(self, entry_id: str) -> str:
        return self._key("dlq", entry_id)

    def journal(self, jid: str) -> str:
        return self._key("j", jid)

    def session_order(self, session_id: str) -> str:
        return self._key("s", session_id)

    def session_copy(self, session_id: str) -> str:
        return self._key("c", session_id)

    def run_outcomes(self, run_id: str) -> str:
        return self._key("run", run_id)

    def run_counts(self, run_id: str) -> str:
        return self._key("run", run_id, "n")

    def run_examples(self, run_id: str) -> str:
        return self._key("run", run_id, "ex")
