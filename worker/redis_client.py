"""Redis connections for every Redis adapter (delivery, streams, the CLI), built one way."""

from __future__ import annotations

from typing import Any

import redis


def make_redis_client(url: str, *, single_connection: bool = False) -> redis.Redis:
    """A client that returns text: every value this pipeline keeps in Redis is JSON.

    `single_connection`: one connection held by the client (behind a lock) instead of a
    pool; a worker process's journal calls then skip redis-py's per-command pool
    checkout, which costs about 0.1 ms of CPU per call (a readiness poll among it).
    """
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        health_check_interval=30,
        single_connection_client=single_connection,
    )


def as_text(value: Any) -> str:
    """A Redis reply as text, whether the client decodes replies or not."""
    return value.decode() if isinstance(value, bytes) else str(value)
