"""Our kombu transport's Channel against a real redis-server."""

from __future__ import annotations

import pytest
import redis
from kombu import Connection

from worker.transport import Transport


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
