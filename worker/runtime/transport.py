"""kombu's Redis transport, with three changes: a message that is not a kombu message
is dead-lettered instead of crashing the worker, one Redis client object serves every
ack instead of a new one per ack, and a message the journal covers gets no unacked
copy in Redis (`JournaledQoS`).

kombu's `_brpop_read` decodes the popped item with `loads()` and lets the error
escape: Celery logs "Unrecoverable error" and the worker exits, and every restart
dies on the next bad item (kombu 5.7). The item is already off the list then, so
the only place to keep it is here. The method below is kombu's own, with the
decode guarded; keep it in step with kombu when upgrading.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis
from kombu.exceptions import DecodeError
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads

from worker.runtime import taking_channel
from worker.runtime.serialization import CONTENT_TYPE
from worker.runtime.taking_channel import TakingChannel

# Set by the worker (worker.runtime.signals): where undeliverable items go.
on_undeliverable: Callable[[bytes | str, str, str, str], None] | None = None


# The header `enqueue` (pipeline.lua) puts on every message it writes.
JOURNALED_HEADER = "checkout_journaled"


def covered_by_journal(message: Any, delivery_tag: str) -> bool:
    """Whether `message` is one the delivery script wrote, so the journal brings it back.

    The header alone is a claim anyone who can write to the broker can make: a plain
    message carrying it would get no copy anywhere and be lost with its worker. So the
    header counts only on the pipeline's content type with a body naming the jid its
    delivery tag (`<jid>.<position>`) names. A forged message that passes names a jid
    the journal decides on: its entry is recovered by the reaper, or there is none and
    its claim skips it.
    """
    if not message.headers.get(JOURNALED_HEADER) or message.content_type != CONTENT_TYPE:
        return False
    jid = str(delivery_tag).rsplit(".", 1)[0]
    body = message.body
    named = f'"{jid}"'
    return bool(jid) and (named in body if isinstance(body, str) else named.encode() in body)


class JournaledQoS(kombu_redis.QoS):
    """kombu's ack emulation, skipped for messages the journal already covers.

    kombu keeps a copy of every delivered message in Redis until it is acked (a MULTI
    of ZADD and HSET, then one of ZREM and HDEL): 35% of a worker's main process per
    message in a py-spy profile. A message written by `enqueue` has a journal entry
    from before it was queued until its result event is out, and the reaper delivers
    it again if a worker dies with it, so for those the copy buys nothing. They are
    kept in memory only (as kombu's in-memory transports do): a reject with requeue,
    or a worker shutting down with messages it has not started, puts them back on
    their queue from there. Messages sent around the producer API keep kombu's copy.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._journaled: set[str] = set()

    def append(self, message: Any, delivery_tag: str) -> None:
        if not covered_by_journal(message, delivery_tag):
            super().append(message, delivery_tag)
            return
        self._journaled.add(delivery_tag)
        virtual.QoS.append(self, message, delivery_tag)

    def ack(self, delivery_tag: str) -> None:
        if delivery_tag not in self._journaled:
            super().ack(delivery_tag)
            return
        self._journaled.discard(delivery_tag)
        virtual.QoS.ack(self, delivery_tag)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        if delivery_tag not in self._journaled:
            super().reject(delivery_tag, requeue=requeue)
            return
        if requeue:
            with self.channel.conn_or_acquire() as client:
                self._put_back(delivery_tag, client, leftmost=True)
        self.ack(delivery_tag)

    def restore_unacked(self, client: Any = None) -> None:
        with self.channel.conn_or_acquire(client) as client:
            for tag in list(self._delivered):
                if tag in self._journaled:
                    self._put_back(tag, client)
                else:
                    self.restore_by_tag(tag, client=client)
        self._delivered.clear()
        self._journaled.clear()

    def _put_back(self, delivery_tag: str, client: Any, *, leftmost: bool = False) -> None:
        """Push the message held in memory back on its queue, as kombu's restore does."""
        message = self._delivered[delivery_tag]
        delivery = message.delivery_info
        pipe = client.pipeline()
        self.channel._do_restore_message(
            message._raw, delivery["exchange"], delivery["routing_key"], pipe, leftmost
        )
        pipe.execute()


class Channel(TakingChannel, kombu_redis.Channel):
    QoS = JournaledQoS
    _shared_client: Any = None
    # (socket, Redis client id) of the connection BRPOP blocks on, for `close`.
    _brpop_client: tuple[Any, int] | None = None

    def _brpop_start(self, timeout: float | None = None) -> None:
        if self._take_instead():
            return
        self._remember_brpop_client()
        self._poll_keys = self._keys_to_poll()
        super()._brpop_start(timeout)

    def _remember_brpop_client(self) -> None:
        """The BRPOP connection's client id (one CLIENT ID per connection), so that
        `close` can unblock it."""
        connection = self.client.connection
        sock = getattr(connection, "_sock", None)
        if sock is None or (self._brpop_client and self._brpop_client[0] is sock):
            return
        connection.send_command("CLIENT", "ID")
        self._brpop_client = (sock, int(connection.read_response()))

    def close(self) -> None:
        """kombu's close, without waiting out a pending BRPOP.

        kombu reads the pending BRPOP's answer before closing (a message popped
        meanwhile is delivered, not lost), so a stop waited up to the BRPOP timeout.
        CLIENT UNBLOCK answers it at once, as a timeout would: nothing is popped, and
        a long timeout (few idle calls) no longer makes stops slow.
        """
        if self._in_poll:
            self._unblock_brpop()
        self._close_taking()
        super().close()

    def _unblock_brpop(self) -> None:
        known = self._brpop_client
        if known is None or known[0] is not getattr(self.client.connection, "_sock", None):
            return
        try:
            with self.conn_or_acquire() as client:
                client.client_unblock(known[1])
        except redis.exceptions.RedisError:  # then kombu waits for the BRPOP, as before
            pass

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        """A client over the channel's connection pool: the same one every time.

        kombu builds a new `redis.Redis` for every delivery's and every ack's unacked
        bookkeeping (`QoS.pipe_or_acquire`); constructing one costs about 0.2 ms of CPU,
        16% of a worker's main process per message in a py-spy profile. Clients are
        only handles on the pool, so one does; a new pool (after a connection error)
        gets a new one.
        """
        if client is not None:
            yield client
            return
        if self._pool is None and getattr(self.connection, "client", None) is None:
            # The connection was closed under an ack (Redis reset it): building a pool
            # now fails with an AttributeError that kills the worker; a connection error
            # is what kombu logs ("Couldn't ack") and recovers from.
            raise redis.exceptions.ConnectionError("the channel's connection is closed")
        pool = self.pool
        shared = self._shared_client
        if shared is None or shared.connection_pool is not pool:
            shared = self._shared_client = self._create_client()
        yield shared

    def _brpop_read(self, **options: Any) -> bool:
        if self._in_take and taking_channel.taker is not None:
            return self._take_read(taking_channel.taker, **options)
        try:
            dest__item = self._poll_reply("BRPOP", **options)
            if not dest__item:
                raise kombu_redis.Empty()
            key, item = dest__item
            self._deliver_item(bytes_to_str(key), item, by_take=False)
            return True
        finally:
            self._in_poll = None
            self._flush_brpop_reauth()

    def _decode(self, item: bytes, queue: str) -> dict[str, Any] | None:
        try:
            payload = loads(bytes_to_str(item))
            self.Message(payload, channel=self)  # what _deliver builds: fails the same way
        except (ValueError, TypeError, KeyError, AttributeError, DecodeError) as error:
            if on_undeliverable is None:
                raise
            reason = f"not a kombu message: {type(error).__name__}: {error}"[:500]
            on_undeliverable(item, queue, reason, type(error).__name__)
            return None
        return payload


class Transport(kombu_redis.Transport):
    Channel = Channel
