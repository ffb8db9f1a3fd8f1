"""The Celery task that applies one checkout command. Thin: the logic is in `worker`."""

from __future__ import annotations

import logging
from typing import Any

from worker.bootstrap import get_service
from worker.celery_app import APPLY_COMMAND_TASK, app, command_summary
from worker.errors import Transient

logger = logging.getLogger(__name__)


@app.task(
    name=APPLY_COMMAND_TASK,
    # Every failure is retried: Transient ones are expected to pass; anything else is a
    # bug or bad stored data, logged with its traceback and kept on the queue until a
    # fix ships, rather than acked and lost. (Rejections are answers, not failures:
    # the service records and publishes them.)
    autoretry_for=(Exception,),
    # None on the task means "retry until it works"; on self.retry() it would mean
    # "the task's default". Backoff is capped well under the broker's visibility timeout.
    max_retries=None,
    retry_backoff=1,
    retry_backoff_max=60,
    retry_jitter=True,
)
def apply_command(command: dict[str, Any]) -> str:
    """Apply one command and publish its result event; returns the event id."""
    try:
        event = get_service().handle(command)
    except Transient:
        raise
    except Exception:
        logger.exception("command %s failed unexpectedly; retrying", command_summary([command]))
        raise
    # Ids and outcome only: sessions carry buyer and payment data.
    logger.info(
        "command %s on session %s: %s (version %s)",
        event.command_id,
        event.session_id,
        event.error.code if event.error else event.type,
        event.version,
    )
    return event.event_id
