"""Integration fixtures: the service wired to the real DynamoDB store and Redis stream."""

from __future__ import annotations

import pytest

from worker.events import RedisEventPublisher
from worker.service import CheckoutService


@pytest.fixture
def publisher(settings, redis_client):
    return RedisEventPublisher(
        redis_client, stream=settings.events_stream, maxlen=settings.events_maxlen
    )


@pytest.fixture
def service(store, publisher):
    return CheckoutService(store, publisher)
