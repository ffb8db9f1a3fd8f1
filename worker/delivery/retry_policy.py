"""When a failed attempt is tried again, and what a command that cannot succeed becomes.

Celery's own retries are not used (`worker.runtime.tasks` says why): a failed attempt
waits in the journal, and the reaper delivers it again after `backoff`.
"""

from __future__ import annotations

import random
from typing import Any

from schemas.commands import id_field
from schemas.events import ResultEvent
from worker.delivery.journal import DeadLetter
from worker.errors import Transient
from worker.service.results import dead_letter_event

# An update whose session does not exist yet is retried this many times (a few
# seconds) before it is rejected `session_not_found`: its create may be in flight.
# Never dead-lettered: a mistyped session id must get its answer quickly.
MISSING_SESSION_RETRIES = 3
MIN_RETRY_DELAY_SECONDS = 0.1


def backoff(retries: int, *, cap: float) -> float:
    """Seconds before the next attempt after `retries` failed ones.

    Exponential with full jitter, as Celery's `get_exponential_backoff_interval`, but in
    fractions of a second: Celery's draws whole seconds and truncates the cap.
    """
    ceiling = min(cap, 2.0**retries)
    return max(random.uniform(0, ceiling), min(MIN_RETRY_DELAY_SECONDS, ceiling))


def dead_letter_for(error: Exception, attempts: int) -> DeadLetter:
    """Why a command whose last allowed attempt failed with `error` is dead-lettered."""
    code = "retries_exhausted" if isinstance(error, Transient) else "handler_failed"
    return DeadLetter(code, type(error).__name__, str(error)[:1000], attempts)


def dead_letter_event_for(delivery_id: str, command: Any, reason: DeadLetter) -> ResultEvent:
    """The `command.dead_lettered` event of `command` (whatever it holds) for `reason`."""
    return dead_letter_event(
        delivery_id,
        command_id=id_field(command, "command_id"),
        session_id=id_field(command, "session_id"),
        code=reason.code,
        message=reason.message,
        error_type=reason.error_type,
    )
