"""What the service needs from the outside, as a protocol its adapters implement.

The DynamoDB store (`worker.dynamodb.store`) implements `SessionStore`; tests use an
in-memory one (`tests/support/fakes.py`). The result event is published by the
delivery layer's `finish` step, atomically with clearing the journal, so the
service itself publishes nothing.
"""

from __future__ import annotations

from typing import Protocol

from worker.domain.rules import Applied, Snapshot


class SessionStore(Protocol):
    def load(self, session_id: str, *, consistent: bool = False) -> Snapshot | None:
        """The session, or None if there is no item.

        Unless `consistent`, the store may answer from a copy it kept since its own last
        write (`Snapshot.fresh` is then False): any write decided on it is conditioned on
        it, so a stale copy fails and is corrected.
        """

    def save(self, *, before: Snapshot | None, applied: Applied, ledger_entry: str) -> None:
        """Write `applied` over `before`, adding `ledger_entry` to the session's ledger.

        Raises `SessionChanged` (with the current item) if the session is no longer
        `before`: also what a retried request that did land looks like.
        """
