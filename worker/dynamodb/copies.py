"""The store's copy of each session as it last wrote it: a read saved per command.

The next command of a session is usually decided on that copy instead of a
`GetItem`; every write decided on it is conditioned on it, so a stale copy costs one
failed conditional write and is corrected from the item it hands back. Where the
copies are kept is an adapter's business (`worker.delivery.session_copies`: Redis,
next to the journal); losing one only costs a read.
"""

from __future__ import annotations

from typing import Protocol


class SessionCopies(Protocol):
    def get(self, session_id: str) -> str | None:
        """The copy last put for `session_id`, or None (never kept, expired or lost)."""

    def put(self, session_id: str, text: str) -> None:
        """Keep `text` as the session's copy, replacing the one before."""


class NoCopies:
    """Every load reads the table (`CHECKOUT_SESSION_COPY_TTL=0`, tools, tests)."""

    def get(self, session_id: str) -> str | None:
        return None

    def put(self, session_id: str, text: str) -> None:
        return None
