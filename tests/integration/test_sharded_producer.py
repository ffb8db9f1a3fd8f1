"""`ShardedProducer` against real redis-servers: each command on its session's shard in
order, a shard failing mid-send named in the error, a list the shards disagree with
refused before anything is sent."""

from __future__ import annotations

import json

import pytest

from tasks.producer import CommandProducer, EnqueueFailed, ShardedProducer
from worker.delivery.shard_records import ShardMismatch
from worker.delivery.shards import shard_of
from worker.redis_client import make_redis_client
from worker.settings import Settings

SESSIONS = [f"sp-{n}" for n in range(40)]


@pytest.fixture
def sharded(env, servers, monkeypatch) -> Settings:
    monkeypatch.setenv("CHECKOUT_REDIS_URLS", ",".join(url for _, url in servers))
    return Settings()


def commands() -> list[dict]:
    made = []
    for step in range(3):
        for session in SESSIONS:
            made.append(
                {
                    "type": "update_session",
                    "command_id": f"{session}-{step}",
                    "session_id": session,
                    "updates": {"currency": "EUR"},
                }
            )
    return made


def queued_command_ids(url: str, queue: str) -> list[str]:
    client = make_redis_client(url)
    try:
        raw = reversed(client.lrange(queue, 0, -1))  # the next to be taken first
        return [json.loads(json.loads(m)["body"])[0][0]["command_id"] for m in raw]
    finally:
        client.close()


def test_each_command_goes_to_its_sessions_shard_in_order(sharded, servers):
    producer = CommandProducer.from_settings(sharded)
    assert isinstance(producer, ShardedProducer)
    assert producer.enqueue_many(commands()) == 3 * len(SESSIONS)
    for shard, (_, url) in enumerate(servers):
        ids = queued_command_ids(url, sharded.commands_queue)
        mine = [s for s in SESSIONS if shard_of(s, 2) == shard]
        assert {i.rsplit("-", 1)[0] for i in ids} == set(mine)
        for session in mine:  # its commands in the order given
            assert [i for i in ids if i.rsplit("-", 1)[0] == session] == [
                f"{session}-{step}" for step in range(3)
            ]


def test_a_shard_failing_mid_send_is_named_and_the_count_is_what_went(sharded, servers):
    producer = CommandProducer.from_settings(sharded)
    servers[1][0].stop()
    with pytest.raises(EnqueueFailed) as failed:
        producer.enqueue_many(commands())
    assert failed.value.in_order is False
    assert "shard 1 (127.0.0.1:" in str(failed.value.__cause__)
    on_shard_0 = len(queued_command_ids(servers[0][1], sharded.commands_queue))
    assert failed.value.sent == on_shard_0 > 0


def test_a_list_the_shards_disagree_with_is_refused_before_sending(sharded, servers, monkeypatch):
    CommandProducer.from_settings(sharded)  # records 0/2 and 1/2
    monkeypatch.setenv("CHECKOUT_REDIS_URLS", ",".join(url for _, url in reversed(servers)))
    with pytest.raises(ShardMismatch, match="records being shard 1 of 2"):
        CommandProducer.from_settings(Settings())
    assert queued_command_ids(servers[0][1], sharded.commands_queue) == []
