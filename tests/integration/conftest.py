"""Integration fixtures: the service wired to the real DynamoDB store and Redis stream,
and journals on the test's key prefix."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tasks.embedded.stack import ManagedProcess, start_redis, stop_all
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


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[tuple[ManagedProcess, str]]]:
    """Two more redis-servers of the test's own (shards), stopped by PID after it."""
    started = []
    for n in range(2):
        (tmp_path / f"r{n}").mkdir()
        started.append(start_redis(tmp_path / f"r{n}"))
    yield started
    stop_all([server for server, _ in started])
