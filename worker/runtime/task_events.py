"""Celery task events on a lease: a remote `enable_events` (what Flower sends) turns
them on for `Settings.task_events_lease` seconds, each call renewing the lease.

Why not Celery's own command: it turns task events on for good, so after Flower has
gone every command still costs three Redis PUBLISHes (received, started, succeeded)
that nobody reads, until the worker restarts. Flower sends `enable_events` every 5 s
while it runs (its events-enable interval), so a lease of a minute keeps events on
while anyone watches and ends them within a minute of the last watcher leaving.
A worker started with events (`checkout worker --events`, CHECKOUT_TASK_EVENTS) keeps
them whatever is sent; `disable_events` is Celery's and turns them off at once.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery.worker.control import control_command, nok, ok

from worker.settings import get_settings

logger = logging.getLogger("checkout.worker")
TASK_GROUP = "task"


class Lease:
    """Until when task events stay on, and whether a timer already watches that."""

    until = 0.0
    watching = False


LEASE = Lease()


# Registered under Celery's name, so it replaces Celery's `enable_events` in this worker.
@control_command()
def enable_events(state: Any) -> dict[str, str]:
    """Tell worker(s) to send task-related events (for a lease, renewed by each call)."""
    consumer = state.consumer
    dispatcher = consumer.event_dispatcher
    if dispatcher is None:
        return nok("event dispatcher unavailable")
    if not dispatcher.groups:  # started with every group: task events are on for good
        return ok("task events already enabled")
    lease = get_settings().task_events_lease
    LEASE.until = time.monotonic() + lease
    if not LEASE.watching:
        consumer.timer.call_repeatedly(min(lease / 4, 5.0), _expire, (consumer,))
        LEASE.watching = True
    if TASK_GROUP in dispatcher.groups:
        return ok(f"task events enabled for {lease:g}s more")
    dispatcher.groups.add(TASK_GROUP)
    logger.info("task events enabled by remote for %gs (renewed by each enable_events)", lease)
    return ok(f"task events enabled for {lease:g}s")


def _expire(consumer: Any) -> None:
    """Turn task events off once the lease has run out (the dispatcher may have been
    replaced since, by a reconnection: read it each time)."""
    dispatcher = consumer.event_dispatcher
    if dispatcher is None or not dispatcher.groups or TASK_GROUP not in dispatcher.groups:
        return
    if time.monotonic() >= LEASE.until:
        dispatcher.groups.discard(TASK_GROUP)
        logger.info("task events off: no enable_events for %gs", get_settings().task_events_lease)
