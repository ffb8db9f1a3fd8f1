"""The result-event streams of several shards (README "Scaling out") read as one.

Each shard has its own stream: a session's events are all on its shard's, in order.
`merged_events` reads them together, each entry named by its shard and entry id (so a
reader can resume each shard where it stopped); `ShardedEventConsumer` is one consumer
object over a consumer group of the same name on every shard.
"""

from __future__ import annotations

import heapq
import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import redis

from worker.streams.consumer import Event, EventConsumer, Handler, run_consumer
from worker.streams.reader import read_events

SHARD_FIELD = "shard"


def merged_events(
    clients: Sequence[redis.Redis],
    stream: str,
    *,
    after: Mapping[int, str],
    follow: bool = False,
) -> Iterator[tuple[int, str, str]]:
    """`(shard, entry_id, event_json)` of every shard's stream, each after its `after`.

    Without `follow`, in the order of the entry ids (the Redis clock of each shard, ms
    then sequence): one time line, as close as separate clocks allow. With `follow`,
    each shard's entries in order, the shards' as they come.
    """
    readers = [
        read_events(client, stream, after=after.get(shard, "0-0"), follow=follow)
        for shard, client in enumerate(clients)
    ]
    if not follow:
        keyed = [_keyed(shard, reader) for shard, reader in enumerate(readers)]
        for _, shard, entry_id, text in heapq.merge(*keyed):
            yield shard, entry_id, text
        return
    yield from _as_they_come(readers)


def _keyed(
    shard: int, reader: Iterator[tuple[str, str]]
) -> Iterator[tuple[tuple[int, int], int, str, str]]:
    for entry_id, text in reader:
        yield _id_key(entry_id), shard, entry_id, text


def _as_they_come(readers: Sequence[Iterator[tuple[str, str]]]) -> Iterator[tuple[int, str, str]]:
    """One thread per shard waiting on its stream (XREAD BLOCK), one queue out."""
    arrived: queue.Queue[Any] = queue.Queue(maxsize=1000)

    def pump(shard: int, reader: Iterator[tuple[str, str]]) -> None:
        try:
            for entry_id, text in reader:
                arrived.put((shard, entry_id, text))
        except Exception as error:  # a shard's Redis gone: the reader says so
            arrived.put(error)

    for shard, reader in enumerate(readers):
        threading.Thread(target=pump, args=(shard, reader), daemon=True).start()
    while True:
        item = arrived.get()
        if isinstance(item, Exception):
            raise item
        yield item


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def parse_positions(text: str, shards: int) -> dict[int, str]:
    """`--after` for several shards: `ID` (every shard) or `K:ID,K:ID,...` (the shards not
    named start at the beginning). Raises ValueError naming a shard that does not exist."""
    if ":" not in text:
        return dict.fromkeys(range(shards), text)
    positions: dict[int, str] = {}
    for part in text.split(","):
        shard, _, entry_id = part.partition(":")
        if int(shard) >= shards:
            raise ValueError(f"shard {shard} in {part!r}: there are {shards} (0 to {shards - 1})")
        positions[int(shard)] = entry_id
    return positions


class ShardedEventConsumer:
    """`EventConsumer`'s interface over the group `group` on every shard's stream; the
    events it hands on carry their shard under `shard`. Each shard's group acknowledges,
    reclaims and redelivers its own entries, exactly as with one Redis."""

    def __init__(self, clients: Sequence[redis.Redis], **options: Any) -> None:
        self.consumers = [EventConsumer(client, **options) for client in clients]

    def ensure_group(self, start_id: str = "0") -> bool:
        """Create the group on every shard; False if it existed on all of them."""
        created = [consumer.ensure_group(start_id) for consumer in self.consumers]
        return any(created)

    def run(self, handler: Handler, *, stop: Callable[[], bool] | None = None) -> int:
        """Ensure the group on every shard, then poll until `stop()` is true."""
        return run_consumer(self, handler, stop)

    def poll_once(self, handler: Handler, *, limit: int | None = None, wait: bool = False) -> int:
        """Poll every shard once, up to `limit` entries in all; with `wait` and nothing
        ready, wait on the shards in turn (a share of `block_ms` each)."""
        taken = 0
        for shard, consumer in enumerate(self.consumers):
            left = None if limit is None else limit - taken
            if left is not None and left <= 0:
                break
            taken += consumer.poll_once(_marked(handler, shard), limit=left)
        if taken or not wait:
            return taken
        for shard, consumer in enumerate(self.consumers):
            block_ms = consumer.block_ms
            consumer.block_ms = max(block_ms // len(self.consumers), 1)
            try:
                taken += consumer.poll_once(_marked(handler, shard), limit=limit, wait=True)
            finally:
                consumer.block_ms = block_ms
            if taken:
                return taken
        return taken


def _marked(handler: Handler, shard: int) -> Callable[[Event], object]:
    return lambda event: handler({SHARD_FIELD: shard, **event})
