"""Shared fixtures. Tiers follow directories: tests/unit, tests/integration, tests/e2e.

Integration and end-to-end tests run against a real redis-server and a real moto
server, started once per test session on free ports. Each test gets its own
tables, stream and queue, so tests never see each other's data.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = Path(str(item.fspath)).relative_to(Path(__file__).parent).parts[0]
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from tasks.embedded.stack import EmbeddedStack

    with EmbeddedStack(tmp_path_factory.mktemp("services")) as running:
        yield running


@pytest.fixture
def env(stack, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for this test: the shared services, names of its own."""
    suffix = uuid.uuid4().hex[:10]
    values = {
        **stack.env(),
        "CHECKOUT_SESSIONS_TABLE": f"sessions_{suffix}",
        "CHECKOUT_EVENTS_STREAM": f"checkout:events:{suffix}",
        "CHECKOUT_COMMANDS_QUEUE": f"checkout.commands.{suffix}",
        "CHECKOUT_BULK_QUEUE": f"checkout.bulk.{suffix}",
        "CHECKOUT_KEY_PREFIX": f"checkout-{suffix}",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def settings(env):
    from worker.settings import Settings

    return Settings()


@pytest.fixture
def dynamodb(settings):
    from worker.dynamodb.clients import make_dynamodb_client

    return make_dynamodb_client(settings)


@pytest.fixture
def tables(settings, dynamodb):
    """The test's sessions table, created as `checkout init` creates it."""
    from worker.dynamodb.tables import ensure_tables

    ensure_tables(dynamodb, settings)
    return settings


@pytest.fixture
def redis_client(settings):
    from worker.redis_client import make_redis_client

    client = make_redis_client(settings.redis_url)
    yield client
    client.close()


@pytest.fixture
def store(tables):
    """The store as a worker builds it: on `CHECKOUT_DYNAMODB_CLIENT`'s client (default
    the HTTP client), with no session copies (each test reads what is stored)."""
    from worker.dynamodb.store import DynamoSessionStore

    return DynamoSessionStore.from_settings(tables)
