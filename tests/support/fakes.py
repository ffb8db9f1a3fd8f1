"""In-process stand-ins for the service's ports, a clock and an id factory.

`InMemorySessionStore` keeps the contract of `worker.service.ports.SessionStore` as the
DynamoDB store keeps it: a save writes the session and appends to its ledger, all or
nothing, and a session counts as unchanged while its version and `updated_at` are
what was read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.session import CheckoutSession
from worker.domain import ledger
from worker.domain.rules import Applied, Snapshot
from worker.errors import SessionChanged

SaveHook = Callable[["InMemorySessionStore"], None]


@dataclass
class InMemorySessionStore:
    """Sessions (with their ledgers) in a dict; `before_save` hooks play concurrent writers.

    Each hook runs once, at the start of the next save, before its conditions are checked.
    """

    sessions: dict[str, Snapshot] = field(default_factory=dict)
    before_save: list[SaveHook] = field(default_factory=list)
    load_error: Exception | None = None
    loads: list[str] = field(default_factory=list)
    save_attempts: list[str] = field(default_factory=list)  # their ledger entries

    def load(self, session_id: str, *, consistent: bool = False) -> Snapshot | None:
        self.loads.append(session_id)
        if self.load_error is not None:
            raise self.load_error
        return self.sessions.get(session_id)

    def save(self, *, before: Snapshot | None, applied: Applied, ledger_entry: str) -> None:
        self.save_attempts.append(ledger_entry)
        if self.before_save:
            self.before_save.pop(0)(self)
        current = self.sessions.get(applied.session.id)
        if not _still(before, current):
            raise SessionChanged(current)
        kept = before.ledger if before and not before.expired else ()
        history = tuple(ledger.appended(kept, ledger_entry))
        self.sessions[applied.session.id] = Snapshot(
            applied.session, applied.version, ledger=history
        )

    # ─── Writers other than the service ───

    def put(self, session: CheckoutSession, *, version: int, expired: bool = False) -> Snapshot:
        """Store `session` directly, as the seed or another worker would."""
        snapshot = Snapshot(session, version, expired=expired)
        self.sessions[session.id] = snapshot
        return snapshot

    def concurrent_change(self, session_id: str, **changes: Any) -> None:
        """Queue a writer that changes `session_id` just before the next save's checks."""

        def write(store: InMemorySessionStore) -> None:
            current = store.sessions[session_id]
            document = current.session.to_document()
            session = CheckoutSession.model_validate(
                {**document, **changes, "updated_at": _later(document["updated_at"])}
            )
            store.sessions[session_id] = Snapshot(
                session, current.version + 1, ledger=current.ledger
            )

        self.before_save.append(write)

    def contend(self, session_id: str, *, times: int) -> None:
        """Queue `times` concurrent writers, so the next `times` saves all conflict."""
        for _ in range(times):
            self.concurrent_change(session_id)

    def version_of(self, session_id: str) -> int | None:
        snapshot = self.sessions.get(session_id)
        return snapshot.version if snapshot else None


def _still(before: Snapshot | None, current: Snapshot | None) -> bool:
    """Whether a write decided on `before` may replace `current` (the store's condition)."""
    if before is None or before.expired:  # a create: the id must be free or expired
        return current is None or current.expired
    if current is None or current.expired:
        return False
    return (current.version, current.session.updated_at) == (
        before.version,
        before.session.updated_at,
    )


def _later(stamp: str) -> str:
    moment = datetime.fromisoformat(stamp) + timedelta(milliseconds=1)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


@dataclass
class ListEventPublisher:
    """Keeps published event JSON in order; `failures` are raised by the next publishes."""

    events: list[str] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)

    def publish(self, event_json: str) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.events.append(event_json)

    def parsed(self) -> list[dict[str, Any]]:
        return [json.loads(event) for event in self.events]


@dataclass
class FakeClock:
    """A clock that stands still until a test moves it."""

    now: datetime = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 1.0) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class SequentialIds:
    """Session ids `cs_1`, `cs_2`, ... for creates that do not name their session.

    Takes the command id as `worker.service.apply.session_id_for` does, and ignores it; the
    ids it was asked for are kept in `asked`.
    """

    prefix: str = "cs_"
    issued: int = 0
    asked: list[str] = field(default_factory=list)

    def __call__(self, command_id: str) -> str:
        self.asked.append(command_id)
        self.issued += 1
        return f"{self.prefix}{self.issued}"


@dataclass
class DictCopies:
    """The store's session copies (`worker.dynamodb.copies.SessionCopies`) in a dict."""

    texts: dict[str, str] = field(default_factory=dict)

    def get(self, session_id: str) -> str | None:
        return self.texts.get(session_id)

    def put(self, session_id: str, text: str) -> None:
        self.texts[session_id] = text

    def item(self, session_id: str) -> dict[str, Any]:
        return json.loads(self.texts[session_id])["item"]
