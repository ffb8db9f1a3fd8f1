"""Applying one command: load -> decide -> conditional save -> publish.

The service knows the store and the publisher only through the two small
protocols below; the DynamoDB and Redis adapters implement them.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from schemas.commands import (
    Command,
    CreateSession,
    canonical_digest,
    command_fingerprint,
    describe_validation_error,
    parse_command,
)
from schemas.events import EventError, ResultEvent, event_id_for, public_snapshot
from worker.domain.ledger import Found, find_applied, ledger_entry
from worker.domain.rules import Applied, Snapshot, decide, event_type_of, js_iso
from worker.errors import (
    AlreadyApplied,
    ContentionExhausted,
    IdempotencyConflict,
    Rejected,
    SessionChanged,
    SessionNotFoundYet,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """A command's result event and, when it wrote the session, the item as written."""

    event: ResultEvent
    written: str | None = None


class SessionStore(Protocol):
    def load(self, session_id: str, *, cached: str | None = None) -> Snapshot | None:
        """The session as a consistent read sees it now, or None if there is no item.

        With `cached` (a copy `save` returned), the copy instead of a read: any write
        decided on it is conditioned on it, so a stale copy fails and is corrected.
        """

    def save(self, *, before: Snapshot | None, applied: Applied, ledger_entry: str) -> str | None:
        """Write `applied` over `before`, adding `ledger_entry` to the session's ledger.

        Returns the written session as text for `load(cached=...)`, or None.
        Raises `SessionChanged` (with the current item) if the session is no longer
        `before`: also what a retried request that did land looks like.
        """


class EventPublisher(Protocol):
    def publish(self, event_json: str) -> None:
        """Append one result event to the event stream."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def session_id_for(command_id: str) -> str:
    """The id of the session a create without `session_id` makes: derived from the
    command id, so applying the create again finds its own session, not a new one."""
    return str(uuid.uuid5(SESSION_ID_NAMESPACE, command_id))


SESSION_ID_NAMESPACE = uuid.UUID("0d5ad0c3-5e55-4f4e-9b1e-3c0c5e55a1d0")


class CheckoutService:
    """Applies checkout commands idempotently and publishes exactly one result per command."""

    def __init__(
        self,
        store: SessionStore,
        publisher: EventPublisher,
        *,
        clock: Callable[[], datetime] = utc_now,
        new_session_id: Callable[[str], str] = session_id_for,
        max_write_attempts: int = 50,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._clock = clock
        self._new_session_id = new_session_id
        self._max_write_attempts = max_write_attempts

    def handle(
        self, payload: Mapping[str, Any] | str, *, defer_if_missing: bool = False
    ) -> ResultEvent:
        """Apply one command (a mapping or JSON text) and publish its result event.

        A command that applied already (it is in its session's ledger) gets its first
        result again and changes nothing; rejections are not stored. Raises a
        `Transient` error when DynamoDB or Redis fail; retrying is then safe. With
        `defer_if_missing`, a command whose session does not exist yet raises
        `SessionNotFoundYet` instead of being rejected: its create may still be queued.
        """
        event = self.outcome(payload, defer_if_missing=defer_if_missing)
        self._publisher.publish(event.to_json())
        return event

    def outcome(
        self, payload: Mapping[str, Any] | str, *, defer_if_missing: bool = False
    ) -> ResultEvent:
        """Apply one command and return its result event without publishing it."""
        return self.apply(payload, defer_if_missing=defer_if_missing).event

    def apply(
        self,
        payload: Mapping[str, Any] | str,
        *,
        defer_if_missing: bool = False,
        cached: str | None = None,
    ) -> Outcome:
        """Apply one command: its result event, and the session as written (if it was).

        `cached` is the session as an earlier `apply` wrote it, to decide on instead of
        reading it; a rejection is never decided on a copy alone (see `_current`).
        """
        payload = _as_mapping(payload)
        try:
            command = parse_command(payload)
        except ValidationError as error:
            return Outcome(self._invalid(payload, error))
        return self._apply(command, defer_if_missing, cached)

    def _apply(self, command: Command, defer_if_missing: bool, cached: str | None) -> Outcome:
        fingerprint = command_fingerprint(command)
        session_id = command.session_id or self._new_session_id(command.command_id)
        try:
            return self._apply_with_retries(
                command, fingerprint, session_id, defer_if_missing, cached
            )
        except Rejected as rejection:
            # Raised by the store (domain rejections are decided in `_decide`): a stored
            # item we cannot read, or a session too large to write. Answered, not written.
            header = self._header(command, fingerprint, session_id, self._clock())
            return Outcome(_rejected(header, rejection, None))

    def _apply_with_retries(
        self,
        command: Command,
        fingerprint: str,
        session_id: str,
        defer_if_missing: bool,
        cached: str | None,
    ) -> Outcome:
        from_copy = bool(cached) and not isinstance(command, CreateSession)
        current = self._load(session_id, cached if from_copy else None, command)
        for attempt in range(1, self._max_write_attempts + 1):
            event, applied = self._decide(command, fingerprint, current, session_id)
            if event.error and from_copy:
                # A rejection writes no session, so no condition would catch a stale
                # copy: decide it again on what a consistent read sees.
                current, from_copy = self._store.load(session_id), False
                event, applied = self._decide(command, fingerprint, current, session_id)
            if defer_if_missing and event.error and event.error.code == "session_not_found":
                raise SessionNotFoundYet(session_id)  # a later try may find it
            if applied is None:
                return Outcome(event)  # a rejection or a replay: nothing to write
            try:
                return Outcome(event, self._write(command, fingerprint, current, applied))
            except SessionChanged as changed:
                logger.debug(
                    "session %s changed under command %s (attempt %d); deciding again",
                    session_id,
                    command.command_id,
                    attempt,
                )
                current = changed.current  # re-decide on what is there now
                from_copy = False
        raise ContentionExhausted(
            f"session {session_id} changed on each of {self._max_write_attempts} write attempts"
        )

    def _load(self, session_id: str, cached: str | None, command: Command) -> Snapshot | None:
        # A create writes only where no live session is, a condition DynamoDB checks;
        # when one is there, the failed condition hands it back to decide on. So a
        # create needs no read, whether its id is fresh or given.
        if isinstance(command, CreateSession):
            return None
        return (
            self._store.load(session_id, cached=cached) if cached else self._store.load(session_id)
        )

    def _write(
        self, command: Command, fingerprint: str, current: Snapshot | None, applied: Applied
    ) -> str | None:
        entry = ledger_entry(
            command.command_id,
            fingerprint,
            applied.previous_status,
            written_at=applied.session.updated_at,
        )
        return self._store.save(before=current, applied=applied, ledger_entry=entry)

    def _header(
        self, command: Command, fingerprint: str, session_id: str | None, now: datetime
    ) -> dict[str, Any]:
        return {
            "event_id": event_id_for(command.command_id, fingerprint),
            "command_id": command.command_id,
            "session_id": session_id,
            "occurred_at": js_iso(now),
        }

    def _decide(
        self, command: Command, fingerprint: str, current: Snapshot | None, session_id: str
    ) -> tuple[ResultEvent, Applied | None]:
        """The command's event, and its effect if it applies; a command already in the
        session's ledger gets its result again and has no effect."""
        now = self._clock()
        header = self._header(command, fingerprint, session_id, now)
        found = (
            find_applied(
                current.ledger,
                command.command_id,
                fingerprint,
                updated_at=current.session.updated_at,
            )
            if current
            else None
        )
        if found:
            return _replayed(header, command, current, found), None
        try:
            applied = decide(command, current, now=now, session_id=session_id)
        except Rejected as rejection:
            return _rejected(header, rejection, current), None
        return _applied_event(header, applied.session, applied), applied

    def _invalid(self, payload: Mapping[str, Any] | str, error: ValidationError) -> ResultEvent:
        # Not recorded: the same payload always fails the same way (same event_id), and
        # a producer that fixes its command can still use the command id.
        command_id = _text_field(payload, "command_id")
        return ResultEvent(
            event_id=event_id_for(command_id or "", canonical_digest(payload)),
            type="command.rejected",
            command_id=command_id,
            session_id=_text_field(payload, "session_id"),
            version=None,
            occurred_at=js_iso(self._clock()),
            error=EventError(code="validation_error", message=describe_validation_error(error)),
        )


def _applied_event(header: dict[str, Any], session: Any, applied: Applied) -> ResultEvent:
    # occurred_at is the session's own stamp, so the event can be rebuilt from the item.
    return ResultEvent(
        **{**header, "occurred_at": session.updated_at},
        type=applied.event_type,
        version=applied.version,
        session=public_snapshot(session.to_document()),
        previous_status=applied.previous_status,
    )


def _replayed(
    header: dict[str, Any], command: Command, current: Snapshot, found: Found
) -> ResultEvent:
    """The result of a command the session's ledger holds, as it was first published.

    Only the newest entry's item is the one it wrote; an older one's result cannot be
    rebuilt, and is answered `already_applied` under the same event id.
    """
    if not found.same_content:
        return _rejected(header, IdempotencyConflict(command.command_id), current)
    if not found.newest:
        return _rejected(header, AlreadyApplied(command.command_id, found.later), current)
    redo = Applied(current.session, current.version, event_type_of(command), found.previous_status)
    return _applied_event(header, current.session, redo)


def _rejected(header: dict[str, Any], rejection: Rejected, current: Snapshot | None) -> ResultEvent:
    return ResultEvent(
        **header,
        type="command.rejected",
        version=current.version if current and not current.expired else None,
        error=EventError(code=rejection.code, message=rejection.message),
    )


def _text_field(payload: Mapping[str, Any] | str, name: str) -> str | None:
    value = payload.get(name) if isinstance(payload, Mapping) else None
    return value if isinstance(value, str) and 0 < len(value) <= 255 else None


def _as_mapping(payload: Mapping[str, Any] | str) -> Mapping[str, Any] | str:
    """JSON text as a mapping when it is one, so a rejection can still name its ids."""
    if not isinstance(payload, str | bytes):
        return payload
    try:
        return json.loads(payload)
    except ValueError:
        return payload
