"""Redis connections for every Redis adapter (delivery, streams, the CLI), built one way."""

from __future__ import annotations

from typing import Any

import redis
from redis.client import Pipeline

# The attribute a Redis error raised by a client of `make_redis_client` carries: the URL
# of the Redis it came from. With several shards, the one to name (`failed_url`).
URL_ATTRIBUTE = "checkout_redis_url"


def make_redis_client(url: str, *, single_connection: bool = False) -> redis.Redis:
    """A client that returns text: every value this pipeline keeps in Redis is JSON.
    Its errors carry `url` (`failed_url`), so a command spanning shards can say which
    one failed.

    `single_connection`: one connection held by the client (behind a lock) instead of a
    pool; a worker process's journal calls then skip redis-py's per-command pool
    checkout, which costs about 0.1 ms of CPU per call (a readiness poll among it).
    """
    client = _Client.from_url(
        url,
        decode_responses=True,
        health_check_interval=30,
        single_connection_client=single_connection,
    )
    client.url = url
    return client


def failed_url(error: BaseException) -> str | None:
    """The URL of the Redis that raised `error`, if a client of ours did."""
    return getattr(error, URL_ATTRIBUTE, None)


def _mark(error: redis.RedisError, url: str) -> None:
    if failed_url(error) is None:
        setattr(error, URL_ATTRIBUTE, url)


class _Client(redis.Redis):
    """redis.Redis, its errors marked with its URL."""

    url = ""

    def execute_command(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute_command(*args, **options)
        except redis.RedisError as error:
            _mark(error, self.url)
            raise

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        pipe = _Pipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        pipe.url = self.url
        return pipe


class _Pipeline(Pipeline):
    """redis-py's pipeline, its errors marked with its client's URL."""

    url = ""

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        try:
            return super().execute(raise_on_error)
        except redis.RedisError as error:
            _mark(error, self.url)
            raise

    def immediate_execute_command(self, *args: Any, **options: Any) -> Any:
        try:
            return super().immediate_execute_command(*args, **options)
        except redis.RedisError as error:
            _mark(error, self.url)
            raise


def as_text(value: Any) -> str:
    """A Redis reply as text, whether the client decodes replies or not."""
    return value.decode() if isinstance(value, bytes) else str(value)
