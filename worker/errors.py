"""Every error the pipeline raises, under one root.

`Rejected` errors are answers: the command is wrong for the session's state, so it is
recorded, reported in a `command.rejected` event and never retried. `Transient` errors
are the infrastructure failing: the task is retried with backoff.
"""

from __future__ import annotations


class CheckoutError(Exception):
    """Raised for anything the checkout pipeline itself detects."""


class Rejected(CheckoutError):
    """Raised when a command cannot be applied; `code` goes into the rejection event."""

    code: str = "validation_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SessionNotFound(Rejected):
    """Raised when the command's session does not exist."""

    code = "session_not_found"

    def __init__(self, session_id: str) -> None:
        super().__init__(f"Checkout session not found: {session_id}")


class SessionExpired(Rejected):
    """Raised when the session's `ttl` has passed, even if DynamoDB still holds the item."""

    code = "session_expired"

    def __init__(self, session_id: str) -> None:
        super().__init__(f"Checkout session expired: {session_id}")


class InvalidTransition(Rejected):
    """Raised when the session's status does not allow the requested status."""

    code = "invalid_transition"


class SessionClosed(Rejected):
    """Raised when a command targets a completed or canceled session."""

    code = "session_closed"

    def __init__(self, session_id: str, status: str) -> None:
        super().__init__(f"Checkout session is closed ({status}): {session_id}")


class VersionConflict(Rejected):
    """Raised when `expected_version` (or a create's "must not exist") does not hold."""

    code = "version_conflict"


class IdempotencyConflict(Rejected):
    """Raised when a `command_id` is reused for a command with other content."""

    code = "idempotency_conflict"

    def __init__(self, command_id: str) -> None:
        super().__init__(
            f"command_id {command_id!r} was already used for a command with a different "
            "type, session or body"
        )


class Transient(CheckoutError):
    """Raised when infrastructure fails in a way a later attempt may not."""


class StoreUnavailable(Transient):
    """Raised when DynamoDB cannot be reached or keeps throttling after botocore's retries."""


class EventsUnavailable(Transient):
    """Raised when the result event cannot be written to Redis."""


class SessionNotFoundYet(Transient):
    """Raised instead of rejecting a command whose session may still be being created."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"checkout session {session_id} does not exist (yet)")


class ContentionExhausted(Transient):
    """Raised when a session kept changing under us for every conditional-write attempt."""


class CorruptSession(Rejected):
    """Raised when no code path can read a stored item: an attribute of the wrong type
    (`version` a string), or a session the model rejects. Another attempt would read
    the same item, so the command is answered at once and nothing is written."""

    code = "corrupt_session"

    def __init__(self, session_id: str | None, problem: str) -> None:
        super().__init__(f"stored session {session_id} is corrupt: {problem}")


class WriteRefused(Rejected):
    """Raised when DynamoDB refuses the session as written (size, number precision, nesting)."""

    code = "validation_error"

    def __init__(self, session_id: str, reason: str) -> None:
        super().__init__(f"DynamoDB cannot store checkout session {session_id}: {reason}")


class AlreadyApplied(Rejected):
    """A command applied earlier, and the session changed since (later commands, or
    another writer): its own result cannot be rebuilt from it any more."""

    code = "already_applied"

    def __init__(self, command_id: str, later: int) -> None:
        since = f"{later} later command(s) have applied" if later else "another writer changed it"
        super().__init__(
            f"Command {command_id} was applied already and the session has changed since "
            f"({since}), so its result is not repeated"
        )


class SessionChanged(CheckoutError):
    """Raised by a store when the session changed after it was read; carries the new state."""

    def __init__(self, current: object) -> None:
        super().__init__("checkout session changed since it was read")
        self.current = current


class JournalUnavailable(Transient):
    """Raised when Redis refuses the journal's script: the command stays journaled and unacked."""


class CommandTimeLimitExceeded(CheckoutError):
    """Raised inside a command that ran past its time limit (`worker.delivery.watchdog`); the
    attempt fails and is retried like any other, then dead-lettered."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the command ran longer than its time limit of {seconds:g}s")
        self.seconds = seconds
