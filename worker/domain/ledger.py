"""The ledger of applied commands a session item carries.

Each write appends the command that caused it to a short list kept in the session
item itself, so one conditional `UpdateItem`/`PutItem` both changes the session and
records the command: no second item, no transaction, 1 write unit for a typical
session where a command record in a transaction cost 6.

An entry is `<id>:<fingerprint>`, both truncated digests (20 characters in all, so
the ledger adds under 200 bytes to the item). The newest entry also carries the
status the session had before it and a digest of the `updated_at` it wrote
(`:<previous status>:<stamp>`), which is all a result event needs beyond the item
itself: its successors are held back by the ordering gate until its event is
published, so when a crash between the write and the publish makes a worker apply it
again, the item is still exactly what it wrote, unless the seed wrote since (it keeps
the ledger but restamps `updated_at`), which the stamp tells.

What it cannot do: recognise a command older than the last `LEDGER_SIZE` applied to
its session (the journal in Redis skips those deliveries first), or a command id
reused on another session (each session has its own ledger).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

LEDGER_SIZE = 8
_ID_BYTES = 9  # 12 base64 characters: 72 bits, no collision in a list of 8
_FINGERPRINT_CHARS = 8  # of the hex digest: a conflict missed one time in 4 billion
_STAMP_CHARS = 6


@dataclass(frozen=True)
class Found:
    """A command found in a session's ledger."""

    same_content: bool  # False: the id was applied with another type, session or body
    newest: bool  # the last write to the item: the item is what it wrote
    previous_status: str | None  # the status before it (newest only; None for a create)
    later: int  # how many commands have applied since


def ledger_entry(
    command_id: str, fingerprint: str, previous_status: str | None, *, written_at: str = ""
) -> str:
    """The ledger entry of a command, as the newest one; `written_at` is the session's
    `updated_at` as the command writes it."""
    entry = f"{_id_digest(command_id)}:{fingerprint[:_FINGERPRINT_CHARS]}:{previous_status or ''}"
    return f"{entry}:{_stamp_digest(written_at)}" if written_at else entry


def appended(ledger: Sequence[str], newest: str) -> list[str]:
    """`ledger` with `newest` added and only the newest entry keeping its status."""
    older = [":".join(item.split(":")[:2]) for item in ledger[-(LEDGER_SIZE - 1) :]]
    return [*older, newest]


def find_applied(
    ledger: Sequence[str], command_id: str, fingerprint: str, *, updated_at: str | None = None
) -> Found | None:
    """Whether `command_id` is among the commands `ledger` holds, and how.

    `updated_at` is the session's now: the newest entry counts as `newest` only if it
    wrote that stamp (no other writer since).
    """
    digest = _id_digest(command_id)
    for later, item in enumerate(reversed(ledger)):
        parts = item.split(":")
        if parts[0] == digest:
            status = parts[2] if later == 0 and len(parts) > 2 else ""
            return Found(
                same_content=parts[1:2] == [fingerprint[:_FINGERPRINT_CHARS]],
                newest=later == 0 and _unchanged(parts, updated_at),
                previous_status=status or None,
                later=later,
            )
    return None


def entry_digest(entry: str) -> str:
    """The digest of the command id a ledger entry records (see `command_digest`)."""
    return entry.split(":", 1)[0]


def command_digest(command_id: str) -> str:
    """How the ledger records `command_id`: a digest, so a ledger cannot name its commands,
    only recognise one whose id is known (`checkout history` matches events with it)."""
    return _id_digest(command_id)


def _unchanged(parts: list[str], updated_at: str | None) -> bool:
    stamp = parts[3] if len(parts) > 3 else ""
    return not stamp or updated_at is None or stamp == _stamp_digest(updated_at)


def _stamp_digest(stamp: str) -> str:
    return hashlib.sha256(stamp.encode()).hexdigest()[:_STAMP_CHARS]


def _id_digest(command_id: str) -> str:
    digest = hashlib.sha256(command_id.encode("utf-8", "surrogatepass")).digest()[:_ID_BYTES]
    return base64.urlsafe_b64encode(digest).decode()
