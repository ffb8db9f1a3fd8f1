"""The Redis stream of result events: publishing and reading.

One stream entry per event, in the field `event`, holding the event's JSON.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import redis

from worker.errors import EventsUnavailable

EVENT_FIELD = "event"


class RedisEventPublisher:
    """Appends result events to a capped Redis stream."""

    def __init__(self, client: redis.Redis, *, stream: str, maxlen: int) -> None:
        self._client = client
        self._stream = stream
        self._maxlen = maxlen

    def publish(self, event_json: str) -> None:
        try:
            # Approximate trimming is O(1) amortised; exact trimming costs on every add.
            self._client.xadd(
                self._stream, {EVENT_FIELD: event_json}, maxlen=self._maxlen, approximate=True
            )
        except redis.RedisError as error:
            raise EventsUnavailable(f"cannot publish to {self._stream}: {error}") from error


def read_events(
    client: redis.Redis,
    stream: str,
    *,
    after: str = "0-0",
    follow: bool = False,
    batch: int = 500,
    block_ms: int = 1000,
) -> Iterator[tuple[str, str]]:
    """Yield `(entry_id, event_json)` after `after`; with `follow`, wait for new ones.

    `client` must decode responses (see `make_redis_client`).
    """
    while True:
        response: Any = client.xread(
            {stream: after}, count=batch, block=block_ms if follow else None
        )
        entries = response[0][1] if response else []
        for entry_id, fields in entries:
            after = entry_id
            yield entry_id, fields[EVENT_FIELD]
        if not entries and not follow:
            return


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
