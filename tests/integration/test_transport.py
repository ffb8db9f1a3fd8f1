"""Our kombu transport's Channel against a real redis-server."""

from __future__ import annotations

import uuid

import pytest
import redis
from kombu import Connection

from tests.integration.test_journal import command, pending
from worker.delivery.journal import Journal
from worker.runtime.serialization import SERIALIZER, register_serializer
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


@pytest.fixture
def enqueue_journaled(settings, redis_client):
    """Put `count` messages on `queue` as the delivery script writes them; their ids."""
    register_serializer()
    journal = Journal(redis_client, settings)

    def put(queue: str, count: int = 1) -> list[str]:
        commands = [command(f"s-{uuid.uuid4().hex[:6]}") for _ in range(count)]
        journal.enqueue([[pending(c)] for c in commands], queue=queue)
        return [c["command_id"] for c in commands]

    return put


def command_id_of(message) -> str:
    return message.payload[0][0]["command_id"]


def test_a_journaled_message_gets_no_unacked_copy_in_redis(
    settings, redis_client, enqueue_journaled
) -> None:
    name = f"checkout.test.{uuid.uuid4().hex[:8]}"
    with Connection(settings.redis_url, transport=Transport) as connection:
        queue = connection.SimpleQueue(name)
        enqueue_journaled(name)
        journaled = queue.get(timeout=5)
        queue.put({"n": 2})  # sent around the producer API: kombu's copy, as before
        plain = queue.get(timeout=5)
        unacked = queue.channel.unacked_key
        assert not redis_client.hexists(unacked, journaled.delivery_tag)
        assert redis_client.hexists(unacked, plain.delivery_tag)
        journaled.ack()
        plain.ack()
        assert not redis_client.hexists(unacked, plain.delivery_tag)
        assert queue.channel.qos._journaled == set()
        queue.close()


def test_the_header_on_a_message_the_script_did_not_write_keeps_kombus_copy(
    settings, redis_client
) -> None:
    """Anyone who can write to the broker can set the header: on a message that names no
    journal entry it must not cost the message its only copy."""
    register_serializer()
    with Connection(settings.redis_url, transport=Transport) as connection:
        queue = connection.SimpleQueue(f"checkout.test.{uuid.uuid4().hex[:8]}")
        queue.put({"n": 1}, headers={JOURNALED_HEADER: True})
        queue.put([[{"x": 1}], {}, {}], headers={JOURNALED_HEADER: True}, serializer=SERIALIZER)
        forged = [queue.get(timeout=5) for _ in range(2)]
        unacked = queue.channel.unacked_key
        assert all(redis_client.hexists(unacked, m.delivery_tag) for m in forged)
        for message in forged:
            message.ack()
        queue.close()


def test_a_journaled_message_rejected_with_requeue_goes_back_on_its_queue(
    settings, enqueue_journaled
) -> None:
    name = f"checkout.test.{uuid.uuid4().hex[:8]}"
    with Connection(settings.redis_url, transport=Transport) as connection:
        queue = connection.SimpleQueue(name)
        (sent,) = enqueue_journaled(name)
        queue.get(timeout=5).requeue()
        again = queue.get(timeout=5)
        assert command_id_of(again) == sent and again.headers[JOURNALED_HEADER]
        assert again.delivery_info["redelivered"]
        again.ack()
        queue.close()


def test_journaled_messages_not_acked_go_back_on_their_queue_at_shutdown(
    settings, redis_client, enqueue_journaled
) -> None:
    name = f"checkout.test.{uuid.uuid4().hex[:8]}"
    with Connection(settings.redis_url, transport=Transport) as connection:
        queue = connection.SimpleQueue(name)
        sent = enqueue_journaled(name, 3)
        taken = [queue.get(timeout=5) for _ in range(3)]
        taken[0].ack()  # finished; the other two were taken but not finished
        queue.channel.qos.restore_unacked()
        assert redis_client.llen(name) == 2
        back = sorted(command_id_of(queue.get(timeout=5)) for _ in range(2))
        assert back == sorted(command_id_of(m) for m in taken[1:])
        assert set(back) <= set(sent)
        queue.close()
