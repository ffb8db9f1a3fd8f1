"""Our kombu transport's Channel against a real redis-server."""

from __future__ import annotations

import uuid

import pytest
import redis
from kombu import Connection

from worker.runtime.transport import JOURNALED_HEADER, Transport


def test_acks_share_one_client_and_a_new_pool_gets_a_new_one(settings) -> None:
    with Connection(settings.redis_url, transport=Transport) as connection:
        channel = connection.default_channel
        with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
            assert first is second
            assert first.connection_pool is channel.pool
            assert first.ping()

        channel._disconnect_pools()  # what kombu does after a connection error

        with channel.conn_or_acquire() as after:
            assert after is not first
            assert after.connection_pool is channel.pool
            assert after.ping()


def test_a_given_client_is_used_as_it_is(settings) -> None:
    with Connection(settings.redis_url, transport=Transport) as connection:
        channel = connection.default_channel
        given = channel._create_client()
        with channel.conn_or_acquire(given) as used:
            assert used is given


def test_unacked_bookkeeping_works_through_the_shared_client(settings, redis_client) -> None:
    with Connection(settings.redis_url, transport=Transport) as connection:
        queue = connection.SimpleQueue("checkout.test.transport")
        queue.put({"n": 1})
        message = queue.get(timeout=5)
        channel = queue.channel
        assert redis_client.hlen(channel.unacked_key) == 1  # recorded at delivery
        message.ack()
        assert redis_client.hlen(channel.unacked_key) == 0  # removed at ack
        queue.close()


def test_an_ack_after_the_connection_closed_is_a_connection_error(settings) -> None:
    # Not an AttributeError from building a pool without connection details, which
    # killed a worker when Redis reset the connection under an ack.
    with Connection(settings.redis_url, transport=Transport) as connection:
        channel = connection.default_channel
        channel._disconnect_pools()
        channel.connection.client = None  # what closing the connection leaves
        with pytest.raises(redis.exceptions.ConnectionError), channel.conn_or_acquire():
            pass


# ─── Messages the journal covers (`JournaledQoS`) ───

JOURNALED = {JOURNALED_HEADER: True}


def test_a_journaled_message_gets_no_unacked_copy_in_redis(settings, redis_client) -> None:
    with Connection(settings.redis_url, transport=Transport) as connection:
        queue = connection.SimpleQueue(f"checkout.test.{uuid.uuid4().hex[:8]}")
        queue.put({"n": 1}, headers=JOURNALED)
        queue.put({"n": 2})  # sent around the producer API: kombu's copy, as before
        journaled, plain = queue.get(timeout=5), queue.get(timeout=5)
        unacked = queue.channel.unacked_key
        assert not redis_client.hexists(unacked, journaled.delivery_tag)
        assert redis_client.hexists(unacked, plain.delivery_tag)
        journaled.ack()
        plain.ack()
        assert not redis_client.hexists(unacked, plain.delivery_tag)
        assert queue.channel.qos._journaled == set()
        queue.close()


def test_a_journaled_message_rejected_with_requeue_goes_back_on_its_queue(settings) -> None:
    with Connection(settings.redis_url, transport=Transport) as connection:
        queue = connection.SimpleQueue(f"checkout.test.{uuid.uuid4().hex[:8]}")
        queue.put({"n": 1}, headers=JOURNALED)
        queue.get(timeout=5).requeue()
        again = queue.get(timeout=5)
        assert again.payload == {"n": 1} and again.headers[JOURNALED_HEADER]
        assert again.delivery_info["redelivered"]
        again.ack()
        queue.close()


def test_journaled_messages_not_acked_go_back_on_their_queue_at_shutdown(
    settings, redis_client
) -> None:
    name = f"checkout.test.{uuid.uuid4().hex[:8]}"
    with Connection(settings.redis_url, transport=Transport) as connection:
        queue = connection.SimpleQueue(name)
        for n in range(3):
            queue.put({"n": n}, headers=JOURNALED)
        taken = [queue.get(timeout=5) for _ in range(3)]
        taken[0].ack()  # finished; the other two were taken but not finished
        queue.channel.qos.restore_unacked()
        assert redis_client.llen(name) == 2
        assert sorted(queue.get(timeout=5).payload["n"] for _ in range(2)) == [1, 2]
        queue.close()
