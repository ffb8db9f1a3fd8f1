"""The Redis stream of result events, against fakeredis in process."""

from __future__ import annotations

import itertools
import json
from typing import Any

import fakeredis
import pytest
import redis

from tests.support.publishing import RedisEventPublisher
from worker.errors import EventsUnavailable, Transient
from worker.streams.reader import EVENT_FIELD, read_events

STREAM = "checkout:events:test"


class RecordingRedis(fakeredis.FakeRedis):
    """A fakeredis client that remembers the keyword arguments of each XADD."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.xadd_options: list[dict[str, Any]] = []

    def xadd(self, name: Any, fields: Any, **options: Any) -> Any:
        self.xadd_options.append(options)
        return super().xadd(name, fields, **options)


@pytest.fixture
def client() -> RecordingRedis:
    return RecordingRedis(decode_responses=True)


def event(n: int) -> str:
    return json.dumps({"event_id": f"e{n}", "type": "session.updated", "version": n})


def publish(client: redis.Redis, count: int, *, maxlen: int = 1000) -> list[str]:
    publisher = RedisEventPublisher(client, stream=STREAM, maxlen=maxlen)
    events = [event(n) for n in range(count)]
    for text in events:
        publisher.publish(text)
    return events


def test_each_event_is_one_entry_holding_its_json_in_the_event_field(client) -> None:
    events = publish(client, 3)
    entries = client.xrange(STREAM)
    assert [fields for _, fields in entries] == [{EVENT_FIELD: text} for text in events]


def test_publishing_trims_approximately_to_maxlen(client) -> None:
    publish(client, 2, maxlen=1234)
    assert client.xadd_options == [{"maxlen": 1234, "approximate": True}] * 2


def test_read_events_yields_every_entry_in_order(client) -> None:
    events = publish(client, 5)
    read = list(read_events(client, STREAM))
    assert [text for _, text in read] == events
    assert [entry_id for entry_id, _ in read] == [entry_id for entry_id, _ in client.xrange(STREAM)]


def test_read_events_pages_through_more_entries_than_one_batch(client) -> None:
    events = publish(client, 7)
    assert [text for _, text in read_events(client, STREAM, batch=3)] == events


def test_read_events_starts_after_the_given_entry(client) -> None:
    events = publish(client, 5)
    third = client.xrange(STREAM)[2][0]
    assert [text for _, text in read_events(client, STREAM, after=third)] == events[3:]


def test_read_events_ends_on_an_empty_or_missing_stream(client) -> None:
    assert list(read_events(client, "checkout:events:none")) == []
    publish(client, 2)
    last = client.xrange(STREAM)[-1][0]
    assert list(read_events(client, STREAM, after=last)) == []


def test_following_picks_up_events_published_later(client) -> None:
    events = publish(client, 2)
    reader = read_events(client, STREAM, follow=True, block_ms=10)
    assert [text for _, text in itertools.islice(reader, 2)] == events
    later = event(99)
    RedisEventPublisher(client, stream=STREAM, maxlen=1000).publish(later)
    assert next(reader)[1] == later


def disconnected() -> fakeredis.FakeRedis:
    server = fakeredis.FakeServer()
    server.connected = False
    return fakeredis.FakeRedis(server=server, decode_responses=True)


def test_a_connection_error_on_publish_is_events_unavailable() -> None:
    publisher = RedisEventPublisher(disconnected(), stream=STREAM, maxlen=1000)
    with pytest.raises(EventsUnavailable, match=STREAM) as raised:
        publisher.publish(event(1))
    assert isinstance(raised.value, Transient)
    assert isinstance(raised.value.__cause__, redis.ConnectionError)


class TimingOutRedis(fakeredis.FakeRedis):
    def xadd(self, *args: Any, **kwargs: Any) -> Any:
        raise redis.TimeoutError("Timeout reading from socket")


def test_a_timeout_on_publish_is_events_unavailable() -> None:
    publisher = RedisEventPublisher(TimingOutRedis(), stream=STREAM, maxlen=1000)
    with pytest.raises(EventsUnavailable):
        publisher.publish(event(1))
