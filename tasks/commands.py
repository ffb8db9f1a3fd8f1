"""The Celery task that applies one checkout command. Thin: the logic is in `worker`."""

from __future__ import annotations

import logging
from typing import Any

from worker.bootstrap import get_service
from worker.celery_app import APPLY_COMMAND_TASK, app
from worker.errors import Transient

logger = logging.getLogger(__name__)


@app.task(
    name=APPLY_COMMAND_TASK,
    autoretry_for=(Transient,),
    # None on the task means "retry until it works"; on self.retry() it would mean
    # "the task's default". Backoff is capped well under the broker's visibility timeout.
    max_retries=None,
    retry_backoff=1,
    retry_backoff_max=60,
    retry_jitter=True,
)
def apply_command(command: dict[str, Any]) -> str:
    """Apply one command and publish its result event; returns the event id."""
    event = get_service().handle(command)
    # Ids and outcome only: sessions carry buyer and payment data.
    logger.info(
        "command %s on session %s: %s (version %s)",
        event.command_id,
        event.session_id,
        event.error.code if event.error else event.type,
        event.version,
    )
    return event.event_id
