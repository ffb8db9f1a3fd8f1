"""`checkout`'s one line for an unreachable Redis names the shard that failed (its
index and URL, the password masked) with several shards, and stays as it was with one."""

from __future__ import annotations

import pytest
import redis

from tasks.cli.errors import explain, shard_failure
from worker.redis_client import URL_ATTRIBUTE
from worker.settings import get_settings

URLS = ["redis://:pw0@r0:6379/0", "redis://u:pw1@r1:6380/0"]


@pytest.fixture
def shards(monkeypatch):
    def use(urls: list[str]) -> None:
        monkeypatch.delenv("CHECKOUT_REDIS_URL", raising=False)
        monkeypatch.setenv("CHECKOUT_REDIS_URLS", ",".join(urls))
        get_settings.cache_clear()

    yield use
    get_settings.cache_clear()


def refused(url: str | None) -> redis.ConnectionError:
    error = redis.ConnectionError("Connection closed by server.")
    if url is not None:
        setattr(error, URL_ATTRIBUTE, url)
    return error


def test_the_shard_that_failed_is_named_with_its_url_masked(shards) -> None:
    shards(URLS)
    wrapped = RuntimeError("Redis refused the journal")
    wrapped.__cause__ = refused(URLS[1])
    friendly = explain(wrapped)
    assert str(friendly) == (
        "cannot reach shard 1 at redis://u:***@r1:6380/0: start it or check CHECKOUT_REDIS_URLS"
    )
    assert friendly.code == 4
    assert str(shard_failure(wrapped)) == str(friendly)


def test_an_error_that_does_not_say_which_shard_lists_them_all(shards) -> None:
    shards(URLS)
    assert str(explain(refused(None))) == (
        "cannot reach one of the 2 Redis shards (0: redis://:***@r0:6379/0, 1: "
        "redis://u:***@r1:6380/0): start them or check CHECKOUT_REDIS_URLS"
    )
    assert shard_failure(refused(None)) is None


def test_one_redis_keeps_its_message(shards) -> None:
    shards(URLS[:1])
    assert str(explain(refused(URLS[0]))) == (
        "cannot reach Redis at redis://:***@r0:6379/0: start it (`checkout up` runs one) or "
        "set CHECKOUT_REDIS_URL"
    )
    assert shard_failure(refused(URLS[0])) is None
