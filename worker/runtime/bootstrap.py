"""Wiring: the service, journal and processor with their adapters, built once per process.

Built lazily, so a Celery prefork child creates its own DynamoDB client and Redis
connection after the fork instead of sharing the parent's sockets.
"""

from __future__ import annotations

import os
from functools import lru_cache

from schemas.payments import PaymentDisplay
from worker.delivery.heartbeat import Heartbeat
from worker.delivery.journal import Journal
from worker.delivery.processor import CommandProcessor, new_worker_id
from worker.delivery.reaper import Reaper
from worker.delivery.session_copies import ClaimedSessionCopies, RedisSessionCopies
from worker.dynamodb.copies import SessionCopies
from worker.dynamodb.store import DynamoSessionStore
from worker.redis_client import make_redis_client
from worker.service.apply import CheckoutService
from worker.settings import Settings, get_settings


def build_service(
    settings: Settings, journal: Journal | None = None, copies: SessionCopies | None = None
) -> CheckoutService:
    """The service on the DynamoDB store; with `journal`, the store keeps its session
    copies in that journal's Redis (`CHECKOUT_SESSION_COPY_TTL`, 0: none), or in
    `copies` when given."""
    if copies is None and journal is not None and settings.session_copy_ttl > 0:
        copies = RedisSessionCopies(journal.client, journal.keys, ttl=settings.session_copy_ttl)
    store = DynamoSessionStore.from_settings(settings, copies=copies)
    return CheckoutService(
        store, payment_display=PaymentDisplay.of(settings.payment_display_fields)
    )


def get_processor() -> CommandProcessor:
    """This process's command processor, heartbeating from the first call on."""
    return _processor_for(os.getpid())


def get_journal() -> Journal:
    return _journal_for(os.getpid())


def start_reaper() -> Reaper:
    """Start this process's reaper thread (a worker's main process calls this once)."""
    settings = get_settings()
    reaper = Reaper(get_journal(), owner=new_worker_id(), interval=settings.reap_interval)
    reaper.start()
    return reaper


@lru_cache(maxsize=1)
def _journal_for(pid: int) -> Journal:
    settings = get_settings()
    return Journal(make_redis_client(settings.redis_url, single_connection=True), settings)


@lru_cache(maxsize=1)
def _processor_for(pid: int) -> CommandProcessor:
    settings = get_settings()
    journal = get_journal()
    copies = None
    if settings.session_copy_ttl > 0:  # read by each claim and kept by each finish
        copies = ClaimedSessionCopies(journal.client, journal.keys, ttl=settings.session_copy_ttl)
    service = build_service(settings, journal, copies)
    processor = CommandProcessor(service, journal, settings, new_worker_id(), copies=copies)
    timeout = settings.heartbeat_timeout
    Heartbeat(journal, processor, interval=timeout / 5, idle_interval=timeout * 0.6).start()
    return processor
