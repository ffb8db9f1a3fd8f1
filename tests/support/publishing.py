"""Publishing result events from Python, for tests of the service and of event readers.

Production publishes in the delivery layer's `finish` script call, atomically with
clearing the journal; tests of the service alone publish what it answers here, so
they can read the stream as consumers do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis

from schemas.events import ResultEvent
from worker.errors import EventsUnavailable
from worker.service.apply import CheckoutService
from worker.service.ports import SessionStore
from worker.streams.reader import EVENT_FIELD


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


class PublishingService:
    """A `CheckoutService` whose `handle` also publishes each result event."""

    def __init__(self, store: SessionStore, publisher: Any, **options: Any) -> None:
        self._store = store
        self._publisher = publisher
        self.service = CheckoutService(store, **options)

    def apply(self, payload: Mapping[str, Any] | str, **options: Any) -> ResultEvent:
        return self.service.apply(payload, **options)

    def handle(self, payload: Mapping[str, Any] | str, **options: Any) -> ResultEvent:
        event = self.service.apply(payload, **options)
        self._publisher.publish(event.to_json())
        return event
