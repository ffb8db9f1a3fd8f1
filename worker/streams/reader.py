"""Reading the Redis stream of result events.

One stream entry per event, in the field `event`, holding the event's JSON. Workers
append them in the delivery layer's `finish` step (`worker/delivery/pipeline.lua`),
atomically with clearing the command's journal entry.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
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
            if EVENT_FIELD in fields:  # an entry some other writer added without one: skipped
                yield entry_id, fields[EVENT_FIELD]
        if not entries and not follow:
            return


def session_entries(
    entries: Iterable[tuple[str, str]], session_id: str
) -> Iterator[tuple[str, str]]:
    """The `(entry_id, event_json)` of `entries` (from `read_events`) whose event is
    `session_id`'s. Entries are not indexed by session: this reads through all of them."""
    # Nearly every entry is another session's: a substring test spares parsing it. The
    # id appears as written (UTF-8) or \u-escaped (the ASCII fallback of `to_json`).
    needles = {json.dumps(session_id)[1:-1], json.dumps(session_id, ensure_ascii=False)[1:-1]}
    for entry_id, text in entries:
        if any(needle in text for needle in needles):
            event = parse_event(text)
            if event is not None and event.get("session_id") == session_id:
                yield entry_id, text


def parse_event(text: str | None) -> dict[str, Any] | None:
    """The event an entry's `event` field holds, or None if it holds no JSON object."""
    if text is None:
        return None
    try:
        event = json.loads(text)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None
