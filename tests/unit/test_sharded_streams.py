"""Several shards' event streams read as one (`worker.streams.sharded`), on fakeredis."""

from __future__ import annotations

import fakeredis
import pytest

from worker.streams.sharded import ShardedEventConsumer, merged_events, parse_positions

STREAM = "checkout:events"


@pytest.fixture
def shards() -> list[fakeredis.FakeRedis]:
    server = [fakeredis.FakeServer() for _ in range(3)]
    clients = [fakeredis.FakeRedis(server=s, decode_responses=True) for s in server]
    # Interleaved clocks: shard 2 first, then 0, then 1, then 0 again.
    for shard, entry_id in ((2, "100-0"), (0, "150-0"), (1, "150-1"), (0, "200-0")):
        clients[shard].xadd(STREAM, {"event": f'{{"n":"{shard}@{entry_id}"}}'}, id=entry_id)
    return clients


def test_entries_come_in_time_order_each_named_by_its_shard(shards):
    merged = list(merged_events(shards, STREAM, after={}))
    assert [(shard, entry_id) for shard, entry_id, _ in merged] == [
        (2, "100-0"),
        (0, "150-0"),
        (1, "150-1"),
        (0, "200-0"),
    ]
    assert all(text == f'{{"n":"{s}@{e}"}}' for s, e, text in merged)


def test_each_shard_resumes_after_its_own_position(shards):
    after = parse_positions("0:150-0,2:100-0", 3)
    assert [(s, e) for s, e, _ in merged_events(shards, STREAM, after=after)] == [
        (1, "150-1"),
        (0, "200-0"),
    ]
    assert parse_positions("$", 2) == {0: "$", 1: "$"}
    with pytest.raises(ValueError, match="there are 3"):
        parse_positions("3:0", 3)


def test_one_consumer_object_takes_every_shards_entries_once(shards):
    consumer = ShardedEventConsumer(shards, stream=STREAM, group="billing", consumer="c1")
    consumer.ensure_group("0")
    seen: list[tuple[int, str]] = []
    assert consumer.poll_once(lambda event: seen.append((event["shard"], event["n"]))) == 4
    assert sorted(seen) == [(0, "0@150-0"), (0, "0@200-0"), (1, "1@150-1"), (2, "2@100-0")]
    assert consumer.poll_once(lambda event: seen.append(event)) == 0  # all acknowledged
