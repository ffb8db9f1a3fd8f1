"""Applying one command: load -> decide -> conditional save, answered by a result event.

The service knows the store only through `worker.service.ports.SessionStore`; the
delivery layer publishes the event it returns (`worker.delivery.processor`).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from schemas.commands import Command, CreateSession, command_fingerprint, parse_command
from schemas.events import ResultEvent
from schemas.payments import DEFAULT_DISPLAY, PaymentDisplay
from worker.domain.ledger import find_applied, ledger_entry
from worker.domain.rules import Applied, Snapshot, decide
from worker.errors import ContentionExhausted, Rejected, SessionChanged, SessionNotFoundYet
from worker.service import results
from worker.service.ports import SessionStore

logger = logging.getLogger(__name__)

SESSION_ID_NAMESPACE = uuid.UUID("0d5ad0c3-5e55-4f4e-9b1e-3c0c5e55a1d0")


def utc_now() -> datetime:
    return datetime.now(UTC)


def session_id_for(command_id: str) -> str:
    """The id of the session a create without `session_id` makes: derived from the
    command id, so applying the create again finds its own session, not a new one."""
    return str(uuid.uuid5(SESSION_ID_NAMESPACE, command_id))


class CheckoutService:
    """Applies checkout commands idempotently: exactly one result event per command."""

    def __init__(
        self,
        store: SessionStore,
        *,
        clock: Callable[[], datetime] = utc_now,
        new_session_id: Callable[[str], str] = session_id_for,
        max_write_attempts: int = 50,
        payment_display: PaymentDisplay = DEFAULT_DISPLAY,
    ) -> None:
        self._store = store
        self._display = payment_display
        self._clock = clock
        self._new_session_id = new_session_id
        self._max_write_attempts = max_write_attempts

    def apply(
        self, payload: Mapping[str, Any] | str, *, defer_if_missing: bool = False
    ) -> ResultEvent:
        """Apply one command (a mapping or JSON text) and return its result event.

        A command that applied already (it is in its session's ledger) gets its first
        result again and changes nothing; rejections are not stored. Raises a
        `Transient` error when DynamoDB fails; retrying is then safe. With
        `defer_if_missing`, a command whose session does not exist yet raises
        `SessionNotFoundYet` instead of being rejected: its create may still be queued.
        """
        payload = _as_mapping(payload)
        try:
            command = parse_command(payload)
        except ValidationError as error:
            return results.invalid_event(payload, error, self._clock())
        return self._apply(command, defer_if_missing)

    def _apply(self, command: Command, defer_if_missing: bool) -> ResultEvent:
        fingerprint = command_fingerprint(command)
        session_id = command.session_id or self._new_session_id(command.command_id)
        try:
            return self._apply_with_retries(command, fingerprint, session_id, defer_if_missing)
        except Rejected as rejection:
            # Raised by the store (domain rejections are decided in `_decide`): a stored
            # item we cannot read, or a session too large to write. Answered, not written.
            head = results.header(command, fingerprint, session_id, self._clock())
            return results.rejected_event(head, rejection, None)

    def _apply_with_retries(
        self, command: Command, fingerprint: str, session_id: str, defer_if_missing: bool
    ) -> ResultEvent:
        current = self._load(session_id, command)
        for attempt in range(1, self._max_write_attempts + 1):
            event, applied = self._decide(command, fingerprint, current, session_id)
            if event.error and current and not current.fresh:
                # A rejection writes no session, so no condition would catch a stale
                # copy: decide it again on what a consistent read sees.
                current = self._store.load(session_id, consistent=True)
                event, applied = self._decide(command, fingerprint, current, session_id)
            if defer_if_missing and event.error and event.error.code == "session_not_found":
                raise SessionNotFoundYet(session_id)  # a later try may find it
            if applied is None:
                return event  # a rejection or a replay: nothing to write
            try:
                self._write(command, fingerprint, current, applied)
                return event
            except SessionChanged as changed:
                logger.debug(
                    "session %s changed under command %s (attempt %d); deciding again",
                    session_id,
                    command.command_id,
                    attempt,
                )
                current = changed.current  # re-decide on what is there now
        raise ContentionExhausted(
            f"session {session_id} changed on each of {self._max_write_attempts} write attempts"
        )

    def _load(self, session_id: str, command: Command) -> Snapshot | None:
        # A create writes only where no live session is, a condition DynamoDB checks;
        # when one is there, the failed condition hands it back to decide on. So a
        # create needs no read, whether its id is fresh or given.
        if isinstance(command, CreateSession):
            return None
        return self._store.load(session_id)

    def _write(
        self, command: Command, fingerprint: str, current: Snapshot | None, applied: Applied
    ) -> None:
        entry = ledger_entry(
            command.command_id,
            fingerprint,
            applied.previous_status,
            written_at=applied.session.updated_at,
        )
        self._store.save(before=current, applied=applied, ledger_entry=entry)

    def _decide(
        self, command: Command, fingerprint: str, current: Snapshot | None, session_id: str
    ) -> tuple[ResultEvent, Applied | None]:
        """The command's event, and its effect if it applies; a command already in the
        session's ledger gets its result again and has no effect."""
        now = self._clock()
        head = results.header(command, fingerprint, session_id, now)
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
            return results.replayed_event(head, command, current, found, self._display), None
        try:
            applied = decide(command, current, now=now, session_id=session_id)
        except Rejected as rejection:
            return results.rejected_event(head, rejection, current), None
        return results.applied_event(head, applied, self._display), applied


def _as_mapping(payload: Mapping[str, Any] | str) -> Mapping[str, Any] | str:
    """JSON text as a mapping when it is one, so a rejection can still name its ids."""
    if not isinstance(payload, str | bytes):
        return payload
    try:
        return json.loads(payload)
    except ValueError:
        return payload
