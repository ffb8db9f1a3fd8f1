"""Reading the Redis stream of result events.

One stream entry per event, in the field `event`, holding the event's JSON. Workers
append them in the delivery layer's `finish` step (`worker/delivery/pipeline.lua`),
atomically with clearing the command's journal entry.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import redis

EVENT_FIELD = "event"


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
