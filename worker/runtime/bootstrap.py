"""Wiring: the service, journal and processor with their adapters, built once per process.

Built lazily, so a Celery prefork child creates its own boto3 client and Redis
connection pool after the fork instead of sharing the parent's sockets.
"""

from __future__ import annotations

import os
from functools import lru_cache

from worker.delivery.journal import Journal
from worker.delivery.processor import CommandProcessor, Heartbeat, new_worker_id
from worker.delivery.reaper import Reaper
from worker.dynamodb.store import DynamoSessionStore
from worker.service.apply import CheckoutService
from worker.settings import Settings, get_settings
from worker.streams.publisher import RedisEventPublisher, make_redis_client


def build_service(settings: Settings) -> CheckoutService:
    store = DynamoSessionStore.from_settings(settings)
    publisher = RedisEventPublisher(
        make_redis_client(settings.redis_url),
        stream=settings.events_stream,
        maxlen=settings.events_maxlen,
    )
    return CheckoutService(store, publisher)


def get_service() -> CheckoutService:
    """This process's service; a forked child builds its own."""
    return _service_for(os.getpid())


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
def _service_for(pid: int) -> CheckoutService:
    return build_service(get_settings())


@lru_cache(maxsize=1)
def _journal_for(pid: int) -> Journal:
    settings = get_settings()
    return Journal(make_redis_client(settings.redis_url, single_connection=True), settings)


@lru_cache(maxsize=1)
def _processor_for(pid: int) -> CommandProcessor:
    settings = get_settings()
    journal = get_journal()
    processor = CommandProcessor(get_service(), journal, settings, new_worker_id())
    Heartbeat(journal, processor, interval=settings.heartbeat_timeout / 5).start()
    return processor
