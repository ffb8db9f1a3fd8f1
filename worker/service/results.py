"""Result events: what the service answers for each command, built in one place.

Every outcome of a command is one `ResultEvent`: applied (`session.*`), rejected
(`command.rejected`, with a code) or dead-lettered (`command.dead_lettered`, built
by the delivery layer when retries run out). Event ids are derived from the command,
so a replay republishes the same id.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from schemas.commands import Command, canonical_digest, describe_validation_error, id_field
from schemas.events import (
    EventError,
    ResultEvent,
    dead_letter_event_id,
    event_id_for,
    public_snapshot,
)
from schemas.payments import DEFAULT_DISPLAY, PaymentDisplay
from worker.domain.js import js_iso
from worker.domain.ledger import Found
from worker.domain.rules import Applied, Snapshot, event_type_of
from worker.errors import AlreadyApplied, IdempotencyConflict, Rejected

Header = dict[str, Any]


def header(command: Command, fingerprint: str, session_id: str, now: datetime) -> Header:
    """The fields every event of `command` shares."""
    return {
        "event_id": event_id_for(command.command_id, fingerprint),
        "command_id": command.command_id,
        "session_id": session_id,
        "occurred_at": js_iso(now),
    }


def applied_event(
    head: Header, applied: Applied, display: PaymentDisplay = DEFAULT_DISPLAY
) -> ResultEvent:
    """`display`: what of the payment instruments the event may show."""
    # occurred_at is the session's own stamp, so the event can be rebuilt from the item.
    return ResultEvent(
        **{**head, "occurred_at": applied.session.updated_at},
        type=applied.event_type,
        version=applied.version,
        session=public_snapshot(applied.session.to_document(), display),
        previous_status=applied.previous_status,
    )


def replayed_event(
    head: Header,
    command: Command,
    current: Snapshot,
    found: Found,
    display: PaymentDisplay = DEFAULT_DISPLAY,
) -> ResultEvent:
    """The result of a command the session's ledger holds, as it was first published.

    Only the newest entry's item is the one it wrote; an older one's result cannot be
    rebuilt, and is answered `already_applied` under the same event id.
    """
    if not found.same_content:
        return rejected_event(head, IdempotencyConflict(command.command_id), current)
    if not found.newest:
        return rejected_event(head, AlreadyApplied(command.command_id, found.later), current)
    redo = Applied(current.session, current.version, event_type_of(command), found.previous_status)
    return applied_event(head, redo, display)


def rejected_event(head: Header, rejection: Rejected, current: Snapshot | None) -> ResultEvent:
    return ResultEvent(
        **head,
        type="command.rejected",
        version=current.version if current and not current.expired else None,
        error=EventError(code=rejection.code, message=rejection.message),
    )


def invalid_event(
    payload: Mapping[str, Any] | str, error: ValidationError | str, now: datetime
) -> ResultEvent:
    """The rejection of a payload that is not a valid command (`error`: pydantic's
    errors, or what is wrong in one line).

    Not recorded: the same payload always fails the same way (same event_id), and a
    producer that fixes its command can still use the command id.
    """
    if isinstance(error, ValidationError):
        error = describe_validation_error(error, model=Command)
    command_id = id_field(payload, "command_id")
    return ResultEvent(
        event_id=event_id_for(command_id or "", canonical_digest(payload)),
        type="command.rejected",
        command_id=command_id,
        session_id=id_field(payload, "session_id"),
        version=None,
        occurred_at=js_iso(now),
        error=EventError(code="validation_error", message=error),
    )


def dead_letter_event(
    delivery_id: str,
    *,
    command_id: str | None,
    session_id: str | None,
    code: str,
    message: str,
    error_type: str,
) -> ResultEvent:
    """The `command.dead_lettered` event: the last error's code, type and message."""
    return ResultEvent(
        event_id=dead_letter_event_id(delivery_id),
        type="command.dead_lettered",
        command_id=command_id,
        session_id=session_id,
        version=None,
        occurred_at=js_iso(datetime.now(UTC)),
        error=EventError(code=code, message=message, type=error_type),
    )


def outcome_of(event: ResultEvent) -> str:
    """How a run summary counts the event: applied, rejected:<code>, dead_lettered."""
    if event.type == "command.dead_lettered":
        return "dead_lettered"
    if event.error:
        return f"rejected:{event.error.code}"
    return "applied"
