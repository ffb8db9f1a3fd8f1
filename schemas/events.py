"""Result events: exactly one per command, published to a Redis stream.

An event is identified by `event_id`, derived from the command's id and content,
so every delivery of a command yields the same id and consumers can deduplicate.
"""

from __future__ import annotations

import json
import uuid
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticSerializationError

from schemas.payments import DEFAULT_DISPLAY, PaymentDisplay
from schemas.session import CheckoutStatus

EventType = Literal[
    "session.created",
    "session.updated",
    "session.status_changed",
    "session.completed",
    "session.canceled",
    "command.rejected",
    "command.dead_lettered",
]

ErrorCode = Literal[
    "validation_error",
    "session_not_found",
    "session_expired",
    "invalid_transition",
    "session_closed",
    "idempotency_conflict",
    "version_conflict",
    "already_applied",
    "corrupt_session",  # the stored item has attributes no code path can read
]

# Why a command was dead-lettered: it failed, it was not rejected, and it will not be
# retried again until someone replays it (`checkout dlq replay`).
DeadLetterCode = Literal[
    "retries_exhausted",  # transient failures past CHECKOUT_MAX_RETRIES
    "handler_failed",  # an unexpected exception, CHECKOUT_MAX_RETRIES times
    "worker_lost",  # the worker process died while applying it, again and again
    "undeliverable",  # not JSON, not a Celery message, or an unknown task
]

# Fixed namespace: event ids must be the same in every process and every release.
EVENT_ID_NAMESPACE = uuid.UUID("6f1c9a52-8f57-4d8e-9d43-2b1f5e0a7c31")


class EventError(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: ErrorCode | DeadLetterCode
    message: str
    # The exception class behind a dead letter (`StoreUnavailable`, `KeyError`, ...).
    type: str | None = None


class ResultEvent(BaseModel):
    """The outcome of one command. Serialise with `exclude_unset=True`."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    type: EventType
    command_id: str | None
    session_id: str | None
    version: int | None
    occurred_at: str
    session: dict[str, Any] | None = None
    previous_status: CheckoutStatus | None = None
    error: EventError | None = None

    def to_json(self) -> str:
        return self._json_text

    @cached_property
    def _json_text(self) -> str:
        # Serialised once: the same text goes into the command record and onto the stream.
        try:
            return self.model_dump_json(exclude_unset=True)
        except PydanticSerializationError:
            # Text UTF-8 cannot carry (a lone surrogate from a JavaScript producer): the
            # same JSON with every non-ASCII character escaped, so an event never fails.
            return json.dumps(
                self.model_dump(mode="json", exclude_unset=True), separators=(",", ":")
            )


def event_id_for(command_id: str, fingerprint: str) -> str:
    """The id of the result of the command `command_id` whose content hashes to `fingerprint`."""
    name = f"{command_id}\n{fingerprint}"
    # uuid5 encodes as strict UTF-8: a lone surrogate (from a JavaScript producer) is
    # named by its escape instead; every valid id keeps the id it always had.
    name = name.encode("utf-8", "backslashreplace").decode("utf-8")
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, name))


def dead_letter_event_id(delivery_id: str) -> str:
    """The id of a `command.dead_lettered` event: one per dead-lettering, not per command,
    so a command replayed and dead-lettered again gets a second, distinct event."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"dead_lettered\n{delivery_id}"))


def public_snapshot(
    document: dict[str, Any], display: PaymentDisplay = DEFAULT_DISPLAY
) -> dict[str, Any]:
    """The session document as an event carries it: payment instruments reduced to
    their display fields (`schemas.payments`)."""
    return display.document(document)
