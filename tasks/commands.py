"""The Celery task that applies one checkout command. Thin: the logic is in `worker`."""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Task
from celery.exceptions import Reject
from celery.utils.time import get_exponential_backoff_interval

from worker.bootstrap import get_service
from worker.celery_app import APPLY_COMMAND_TASK, app, command_summary
from worker.errors import SessionNotFoundYet, Transient

logger = logging.getLogger(__name__)

RETRY_BACKOFF_MAX_SECONDS = 60  # well under the broker's visibility timeout
# A command for a session that does not exist is retried this many times (about 7 s
# with backoff) before it is rejected: its create may still be queued or in flight.
MISSING_SESSION_RETRIES = 3


# Celery's autoretry is not used: when the broker refuses the retry message, Celery
# acks the original and the command is gone. This task keeps it instead (see below).
@app.task(bind=True, name=APPLY_COMMAND_TASK, max_retries=None)
def apply_command(self: Task, command: dict[str, Any]) -> str:
    """Apply one command and publish its result event; returns the event id.

    Every failure is retried with capped exponential backoff: transient ones are
    expected to pass; anything else is a bug, logged with its traceback and kept
    until a fix ships. Rejections are answers, recorded and published, not failures.
    """
    attempt = self.request.retries
    while True:
        try:
            event = get_service().handle(
                command, defer_if_missing=attempt < MISSING_SESSION_RETRIES
            )
            break
        except Exception as error:  # every failure is retried, none is dropped
            delay = _backoff(attempt)
            _log_failure(error, command, delay)
            try:
                raise self.retry(exc=error, countdown=delay) from error
            except Reject:
                # The retry message could not be published (the broker is failing too).
                # The original is still unacked: keep it, wait here and try again.
                logger.warning(
                    "command %s: could not re-enqueue for retry; retrying in place",
                    command_summary([command]),
                )
                time.sleep(delay)
                attempt += 1
    # Ids and outcome only: sessions carry buyer and payment data.
    logger.info(
        "command %s on session %s: %s (version %s)",
        event.command_id,
        event.session_id,
        event.error.code if event.error else event.type,
        event.version,
    )
    return event.event_id


def _backoff(attempt: int) -> float:
    jittered = get_exponential_backoff_interval(
        factor=1, retries=attempt, maximum=RETRY_BACKOFF_MAX_SECONDS, full_jitter=True
    )
    return max(jittered, 0.5)  # full jitter can draw 0: never spin


def _log_failure(error: Exception, command: dict[str, Any], delay: float) -> None:
    summary = command_summary([command])
    if isinstance(error, SessionNotFoundYet):
        logger.info("command %s: %s; retrying in %.1fs", summary, error, delay)
    elif isinstance(error, Transient):
        logger.warning("command %s: %s; retrying in %.1fs", summary, error, delay)
    else:
        logger.exception("command %s failed unexpectedly; retrying in %.1fs", summary, delay)
