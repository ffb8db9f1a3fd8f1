"""Integration fixtures: the service wired to the real DynamoDB store and Redis stream,
and journals on the test's key prefix."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.publishing import PublishingService, RedisEventPublisher
from worker.delivery.journal import Journal
from worker.redis_client import make_redis_client
from worker.settings import Settings


@pytest.fixture
def publisher(settings, redis_client):
    return RedisEventPublisher(
        redis_client, stream=settings.events_stream, maxlen=settings.events_maxlen
    )


@pytest.fixture
def service(store, publisher):
    return PublishingService(store, publisher)


@pytest.fixture
def make_journal(settings) -> Callable[..., Journal]:
    """A Journal on the test's prefix; keyword arguments override settings."""
    clients = []

    def make(**overrides: object) -> Journal:
        client = make_redis_client(settings.redis_url)
        clients.append(client)
        return Journal(client, Settings(**overrides) if overrides else settings)

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def journal(make_journal) -> Journal:
    return make_journal()
