"""Wiring: the service with its DynamoDB and Redis adapters, built once per process.

Built lazily, so a Celery prefork child creates its own boto3 client and Redis
connection pool after the fork instead of sharing the parent's sockets.
"""

from __future__ import annotations

import os
from functools import lru_cache

from worker.events import RedisEventPublisher, make_redis_client
from worker.service import CheckoutService
from worker.settings import Settings, get_settings
from worker.store import DynamoSessionStore


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


@lru_cache(maxsize=1)
def _service_for(pid: int) -> CheckoutService:
    return build_service(get_settings())
