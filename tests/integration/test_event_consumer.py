"""Consuming the result-event stream through a consumer group, against a real redis-server."""

from __future__ import annotations

import json
import logging
import re
import socket
import subprocess
import time
from collections.abc import Callable

import pytest

from tasks.embedded.stack import CHECKOUT
from tests.integration.helpers import new_id
from tests.support.publishing import RedisEventPublisher
from worker.streams.consumer import EventConsumer

GROUP = "g"
BUYER_EMAIL = "buyer-secret@example.com"
SHORT_IDLE_MS = 50
TIMEOUT_SECONDS = 10.0


def event(kind: str = "session.completed") -> dict:
    return {
        "event_id": new_id("evt"),
        "type": kind,
        "command_id": new_id("cmd"),
        "session_id": "s-1",
        "version": 1,
        "occurred_at": "2026-11-26T09:26:27.779Z",
        "session": {"id": "s-1", "buyer": {"email": BUYER_EMAIL}},
    }


@pytest.fixture
def publish(settings, redis_client) -> Callable[..., list[dict]]:
    """Append events to the test's stream, as the worker does; returns them."""
    publisher = RedisEventPublisher(redis_client, stream=settings.events_stream, maxlen=1000)

    def run(*events: dict) -> list[dict]:
        for each in events:
            publisher.publish(json.dumps(each))
        return list(events)

    return run


@pytest.fixture
def consumer(settings, redis_client) -> Callable[..., EventConsumer]:
    """A consumer of group `g` on the test's stream; the group is created."""

    def make(name: str, **options) -> EventConsumer:
        options = {"claim_idle_ms": SHORT_IDLE_MS, "block_ms": 50, **options}
        made = EventConsumer(
            redis_client, stream=settings.events_stream, group=GROUP, consumer=name, **options
        )
        made.ensure_group()
        return made

    return make


def pending(redis_client, settings) -> list[dict]:
    return redis_client.xpending_range(settings.events_stream, GROUP, "-", "+", count=1000)


def entry_ids(redis_client, settings) -> list[str]:
    return [entry_id for entry_id, _ in redis_client.xrange(settings.events_stream)]


def poll_until(consumer: EventConsumer, handler, done: Callable[[], bool]) -> None:
    """Poll (each poll waits up to block_ms for new entries) until `done()`, or fail."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while not done():
        assert time.monotonic() < deadline, "timed out"
        consumer.poll_once(handler, wait=True)


def wait_until_idle(redis_client, settings, idle_ms: int) -> None:
    """Until every pending entry has been idle at least `idle_ms`, so it can be claimed."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while min(entry["time_since_delivered"] for entry in pending(redis_client, settings)) < idle_ms:
        assert time.monotonic() < deadline, "timed out"
        redis_client.ping()


# ─── The Python consumer ───


def test_a_new_group_sees_the_backlog_and_ensure_group_is_idempotent(
    publish, consumer, settings, redis_client
):
    backlog = publish(event(), event())
    first = consumer("a")

    assert first.ensure_group() is False
    seen: list[dict] = []
    assert first.poll_once(seen.append) == 2
    assert seen == backlog
    assert first.poll_once(seen.append) == 0


def test_ensure_group_creates_a_missing_stream(settings, redis_client):
    made = EventConsumer(redis_client, stream=settings.events_stream, group=GROUP, consumer="a")

    assert made.ensure_group() is True
    assert redis_client.xinfo_groups(settings.events_stream)[0]["name"] == GROUP


def test_an_entry_is_acknowledged_only_after_the_handler_returned(
    publish, consumer, settings, redis_client
):
    publish(event(), event(), event())
    first = consumer("a")
    pending_while_handling: list[int] = []

    def handler(_event: dict) -> None:
        pending_while_handling.append(len(pending(redis_client, settings)))

    assert first.poll_once(handler) == 3
    assert pending_while_handling == [3, 2, 1]
    assert pending(redis_client, settings) == []


def test_a_failing_handler_leaves_the_entry_pending_for_another_consumer(
    publish, consumer, settings, redis_client, caplog
):
    failing, _acked = publish(event(), event())
    first, second = consumer("a"), consumer("b")

    def handler(seen: dict) -> None:
        if seen["event_id"] == failing["event_id"]:
            raise RuntimeError("downstream is down")

    with caplog.at_level(logging.ERROR, logger="worker.streams.consumer"):
        assert first.poll_once(handler) == 2

    [left] = pending(redis_client, settings)
    assert (left["consumer"], left["times_delivered"]) == ("a", 1)
    assert failing["event_id"] in caplog.text
    assert failing["command_id"] in caplog.text
    assert "downstream is down" in caplog.text
    assert BUYER_EMAIL not in caplog.text

    redelivered: list[dict] = []
    poll_until(second, redelivered.append, lambda: bool(redelivered))
    assert redelivered == [failing]
    assert pending(redis_client, settings) == []


def test_delivery_count_counts_redeliveries(publish, consumer, settings, redis_client):
    publish(event())
    [entry_id] = entry_ids(redis_client, settings)
    first, second = consumer("a"), consumer("b")
    counts: list[int] = []

    def fail(_event: dict) -> None:
        counts.append(first.delivery_count(entry_id))
        raise RuntimeError("not yet")

    def succeed(_event: dict) -> None:
        counts.append(second.delivery_count(entry_id))

    first.poll_once(fail)
    poll_until(second, succeed, lambda: len(counts) == 2)

    assert counts == [1, 2]
    assert second.delivery_count(entry_id) == 0


def test_entries_that_hold_no_event_object_are_acknowledged_not_retried(
    publish, consumer, settings, redis_client, caplog
):
    stream = settings.events_stream
    redis_client.xadd(stream, {"event": "not json"})
    redis_client.xadd(stream, {"event": "[1, 2]"})
    redis_client.xadd(stream, {"other": "field"})
    good = publish(event())
    seen: list[dict] = []

    with caplog.at_level(logging.ERROR, logger="worker.streams.consumer"):
        assert consumer("a").poll_once(seen.append) == 4

    assert seen == good
    assert pending(redis_client, settings) == []
    assert caplog.text.count("holds no event JSON object") == 3


def test_duplicates_are_recognisable_by_event_id(publish, consumer, settings, redis_client):
    # A consumer that did its work and died before the ack, and the worker republishing
    # the same event on a redelivered command: both reach handlers twice, same event_id.
    crashed, republished = event(), event()
    publish(crashed, republished, republished)
    first, second = consumer("a"), consumer("b")
    effects: list[str] = []
    handled_ids: set[str] = set()

    def dedup(seen: dict) -> None:
        if seen["event_id"] in handled_ids:
            return
        effects.append(seen["event_id"])
        handled_ids.add(seen["event_id"])

    def dies_after_the_effect(seen: dict) -> None:
        dedup(seen)
        if seen["event_id"] == crashed["event_id"]:
            raise RuntimeError("killed before the ack")

    first.poll_once(dies_after_the_effect)
    poll_until(second, dedup, lambda: not pending(redis_client, settings))

    assert effects == [crashed["event_id"], republished["event_id"]]


def test_run_polls_until_stopped(publish, consumer):
    published = publish(event(), event())
    seen: list[dict] = []

    taken = consumer("a").run(seen.append, stop=lambda: len(seen) >= 2)

    assert (taken, seen) == (2, published)


# ─── checkout events --group ───


def checkout_events(env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHECKOUT, "events", *args], env=env, capture_output=True, text=True, timeout=60
    )


def printed(result: subprocess.CompletedProcess[str]) -> list[dict]:
    """The printed events, each without the `stream_id` the CLI adds to it."""
    assert result.returncode == 0, result.stderr
    return [without_stream_id(json.loads(line)) for line in result.stdout.splitlines()]


def without_stream_id(printed_event: dict) -> dict:
    stream_id = printed_event.pop("stream_id")
    assert re.fullmatch(r"\d+-\d+", stream_id), stream_id
    return printed_event


def stream_ids(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line)["stream_id"] for line in result.stdout.splitlines()]


def test_cli_takes_over_what_a_dead_consumer_left_pending(env, publish, settings, redis_client):
    stream = settings.events_stream
    taken_by_dead = publish(event(), event())
    redis_client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    # Consumer `a` reads two entries into the pending list, then dies without acking.
    read = redis_client.xreadgroup(GROUP, "a", {stream: ">"}, count=10)
    assert len(read[0][1]) == 2
    new = publish(event())
    wait_until_idle(redis_client, settings, SHORT_IDLE_MS)

    result = checkout_events(
        env, "--group", GROUP, "--consumer", "b", "--claim-idle-ms", str(SHORT_IDLE_MS)
    )

    assert printed(result) == taken_by_dead + new
    assert pending(redis_client, settings) == []
    assert redis_client.xinfo_groups(stream)[0]["lag"] == 0


def test_cli_leaves_entries_pending_on_a_live_consumer_alone(env, publish, settings, redis_client):
    stream = settings.events_stream
    publish(event())
    redis_client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    redis_client.xreadgroup(GROUP, "a", {stream: ">"}, count=10)

    result = checkout_events(env, "--group", GROUP, "--consumer", "b")

    assert printed(result) == []
    assert [entry["consumer"] for entry in pending(redis_client, settings)] == ["a"]


def test_cli_count_prints_and_acknowledges_only_that_many(env, publish, settings, redis_client):
    published = publish(*(event() for _ in range(5)))

    first = checkout_events(env, "--group", GROUP, "--count", "2")
    rest = checkout_events(env, "--group", GROUP)

    assert printed(first) == published[:2]
    assert printed(rest) == published[2:]
    assert pending(redis_client, settings) == []


def test_cli_follow_waits_for_new_events(env, publish):
    process = subprocess.Popen(
        [CHECKOUT, "events", "--group", GROUP, "--follow", "--count", "2"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        published = publish(event())
        first = without_stream_id(json.loads(process.stdout.readline()))
        published += publish(event())
        second = without_stream_id(json.loads(process.stdout.readline()))
        assert process.wait(timeout=TIMEOUT_SECONDS) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()

    assert [first, second] == published


def test_cli_consumer_options_need_a_group(env):
    result = checkout_events(env, "--consumer", "b")

    assert result.returncode == 2
    assert "need --group" in result.stderr


# ─── Stream ids, --session, the default consumer ───


def test_each_printed_event_carries_its_entry_id_and_after_resumes_from_it(
    env, publish, settings, redis_client
):
    published = publish(*(event() for _ in range(4)))

    first = checkout_events(env, "--count", "2")
    rest = checkout_events(env, "--after", stream_ids(first)[-1])

    assert stream_ids(first) + stream_ids(rest) == entry_ids(redis_client, settings)
    assert printed(first) + printed(rest) == published
    # Through a group, too.
    grouped = checkout_events(env, "--group", GROUP)
    assert stream_ids(grouped) == entry_ids(redis_client, settings)


def test_session_prints_only_that_sessions_events(env, publish):
    ours = [event() | {"session_id": "s-ours"}, event() | {"session_id": "s-ours"}]
    others = [event() | {"session_id": "s-ours-not"}, event() | {"session_id": "s-other"}]
    publish(ours[0], *others, ours[1])

    assert printed(checkout_events(env, "--session", "s-ours")) == ours
    assert printed(checkout_events(env, "--session", "s-ours", "--count", "1")) == ours[:1]
    assert printed(checkout_events(env, "--session", "s-none")) == []


def test_session_with_a_group_is_refused_before_anything_is_acknowledged(env, publish):
    publish(event())
    result = checkout_events(env, "--group", GROUP, "--session", "s-1")

    assert result.returncode == 2
    assert result.stderr.strip() == "checkout events: --session cannot be used with --group"
    assert printed(checkout_events(env, "--group", GROUP)) != []


def test_a_group_reader_without_consumer_is_the_same_consumer_on_every_run(
    env, publish, settings, redis_client
):
    publish(event())
    printed(checkout_events(env, "--group", GROUP))
    publish(event())
    printed(checkout_events(env, "--group", GROUP))

    consumers = redis_client.xinfo_consumers(settings.events_stream, GROUP)
    assert [consumer["name"] for consumer in consumers] == [socket.gethostname()]
