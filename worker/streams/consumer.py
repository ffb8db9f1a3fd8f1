"""Reliable consumption of the result-event stream through a Redis consumer group.

Each consumer of a group gets its own share of the stream's entries. An entry is
acknowledged (XACK) only after the handler returned, so a handler that raises, or
a consumer that dies, leaves it pending. Once it has been pending longer than
`claim_idle_ms`, any consumer of the group takes it over (XAUTOCLAIM, Redis >= 6.2)
and hands it to its handler again.

Delivery is therefore at-least-once: a handler may see an event again (after its
own failure, or after a consumer died between the handler's effect and the ack),
possibly after newer events. Every delivery of an event, and every republication
of it by the worker, carries the same `event_id`: handlers deduplicate on it, for
example by recording handled ids together with their effect.
`EventConsumer.delivery_count(entry_id)` says how often the group delivered an
entry that is still pending.

An entry whose `event` field is missing or not a JSON object is acknowledged and
logged by its entry id: delivering it again could never succeed. Logs name events
by entry id, event_id, type and command_id only, since events carry buyer data;
a handler should keep event data out of its exception messages for the same reason.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

import redis

from worker.streams.reader import EVENT_FIELD, parse_event

logger = logging.getLogger(__name__)

DEFAULT_CLAIM_IDLE_MS = 30_000
LOGGED_KEYS = ("event_id", "type", "command_id")

Event = dict[str, Any]
Handler = Callable[[Event], object]
Entry = tuple[str, dict[str, str]]


def default_consumer_name() -> str:
    """The host's name: one consumer per host, the same across runs and restarts.

    A per-process name (host and pid) would add a consumer to the group on every run,
    each holding whatever it left pending until another claims it. Two readers of one
    group running at once on the same host should each pass their own name.
    """
    return socket.gethostname()


class EventConsumer:
    """One consumer of a group on the result-event stream.

    `client` must decode responses (see `worker.redis_client.make_redis_client`).
    `batch` caps the entries taken per poll; keep a batch's handling time well
    under `claim_idle_ms`, or other consumers take over entries still in hand.
    With `entry_id_field`, each event handed to the handler also carries its stream
    entry id under that key (first), for readers that print or resume from it.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        stream: str,
        group: str,
        consumer: str,
        claim_idle_ms: int = DEFAULT_CLAIM_IDLE_MS,
        batch: int = 100,
        block_ms: int = 1000,
        entry_id_field: str | None = None,
    ) -> None:
        self._client = client
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.claim_idle_ms = claim_idle_ms
        self.batch = batch
        self.block_ms = block_ms
        self.entry_id_field = entry_id_field

    def ensure_group(self, start_id: str = "0") -> bool:
        """Create the group, and the stream if missing; False if the group existed.

        A new group starts after `start_id`: `0` delivers the backlog, `$` only new events.
        """
        try:
            self._client.xgroup_create(self.stream, self.group, id=start_id, mkstream=True)
        except redis.ResponseError as error:
            if not str(error).startswith("BUSYGROUP"):
                raise
            return False
        return True

    def run(self, handler: Handler, *, stop: Callable[[], bool] | None = None) -> int:
        """Ensure the group, then poll until `stop()` is true; returns the entries taken.

        Waits up to `block_ms` per poll when nothing is ready, so `stop` is checked
        at least that often. Redis errors propagate; pending entries stay pending.
        """
        return run_consumer(self, handler, stop)

    def poll_once(self, handler: Handler, *, limit: int | None = None, wait: bool = False) -> int:
        """Handle up to `limit` (default `batch`) entries: reclaimed ones, then new ones.

        Returns how many entries were taken (handled, failed or malformed); 0 means
        none was ready. With `wait`, blocks up to `block_ms` for new entries when
        nothing was reclaimed. The group must exist (`ensure_group`).
        """
        limit = self.batch if limit is None else limit
        taken = self._handle_all(handler, self._reclaim(limit))
        if taken < limit:
            fresh = self._read_new(limit - taken, wait=wait and not taken)
            taken += self._handle_all(handler, fresh)
        return taken

    def delivery_count(self, entry_id: str) -> int:
        """How often the group delivered this entry; 0 once it is acknowledged."""
        pending: Any = self._client.xpending_range(
            self.stream, self.group, min=entry_id, max=entry_id, count=1
        )
        return pending[0]["times_delivered"] if pending else 0

    def _reclaim(self, limit: int) -> list[Entry]:
        """Take over entries pending longer than `claim_idle_ms`, whoever holds them."""
        cursor = "0-0"
        while True:
            cursor, entries, *_ = self._client.xautoclaim(
                self.stream, self.group, self.consumer, self.claim_idle_ms, cursor, count=limit
            )
            # XAUTOCLAIM scans a bounded part of the pending list per call; go on to its end.
            if entries or cursor == "0-0":
                return entries

    def _read_new(self, limit: int, *, wait: bool) -> list[Entry]:
        response: Any = self._client.xreadgroup(
            self.group,
            self.consumer,
            {self.stream: ">"},
            count=limit,
            block=self.block_ms if wait else None,
        )
        return response[0][1] if response else []

    def _handle_all(self, handler: Handler, entries: list[Entry]) -> int:
        for entry_id, fields in entries:
            self._handle(handler, entry_id, fields)
        return len(entries)

    def _handle(self, handler: Handler, entry_id: str, fields: dict[str, str]) -> None:
        event = parse_event(fields.get(EVENT_FIELD))
        if event is None:
            logger.error(
                "stream %s entry %s holds no event JSON object; acknowledged unhandled",
                self.stream,
                entry_id,
            )
        else:
            if self.entry_id_field is not None:
                event = {self.entry_id_field: entry_id, **event}
            try:
                handler(event)
            except Exception:
                self._log_failure(entry_id, event)
                return
        self._client.xack(self.stream, self.group, entry_id)

    def _log_failure(self, entry_id: str, event: Event) -> None:
        logger.exception(
            "event handler failed on stream %s entry %s (%s), delivery %d; left pending, "
            "redelivered after %d ms",
            self.stream,
            entry_id,
            describe_event(event),
            self.delivery_count(entry_id),
            self.claim_idle_ms,
        )


def run_consumer(consumer: Any, handler: Handler, stop: Callable[[], bool] | None) -> int:
    """`run` for any consumer with `ensure_group` and `poll_once` (one shard or several)."""
    consumer.ensure_group()
    taken = 0
    while stop is None or not stop():
        taken += consumer.poll_once(handler, wait=True)
    return taken


def describe_event(event: Event) -> str:
    """The event's identifying fields, for logs: never its session or error body."""
    return " ".join(f"{key}={event.get(key)}" for key in LOGGED_KEYS)
