"""How a solo worker's kombu channel takes messages (`worker.runtime.taking`): the take
path of `worker.runtime.transport.Channel`, kept apart from kombu's own.

Three ways a message arrives, by what is known of the queues:
- nothing known (idle, or the last command had not waited): kombu's BRPOP;
- a backlog (the last command waited, or the last take found a message): a `take`,
  sent where kombu would send its BRPOP and read when its socket is readable;
- the finish of the last command took one already (pipelined behind it): that one is
  delivered from the event loop's next turn, woken through a socketpair, so timers,
  signals and shutdown get their turn between any two commands, as with BRPOP.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from time import monotonic
from typing import TYPE_CHECKING, Any

import redis
from kombu.asynchronous import get_event_loop
from kombu.transport import redis as kombu_redis

if TYPE_CHECKING:  # the journal and the service load with the worker, not with kombu
    from worker.runtime.taking import Taker

logger = logging.getLogger("checkout.worker")

# Set by a solo worker (worker.runtime.signals). None: BRPOP only.
taker: Taker | None = None

APPLY_COMMAND_TASK = "checkout.apply_command"  # worker.runtime.app's; kept import-free


class TakingChannel:
    """Mixed into kombu's Redis Channel (`worker.runtime.transport.Channel`)."""

    _taking = False  # the next poll takes instead of BRPOP
    _in_take = False  # a take is in flight on the BRPOP connection
    _pending: tuple[str, bytes] | None = None  # (queue key, message) a finish took
    _wakeup: tuple[socket.socket, socket.socket] | None = None
    _wakeup_loop: Any = None
    _poll_keys: list[str] | None = None

    # What kombu's Channel provides.
    client: Any
    connection: Any
    connection_errors: Any
    sep: str
    _in_poll: Any
    _brpop_sent_at: float
    _queue_cycle: Any
    active_queues: Any
    priority_steps: Any

    def _keys_to_poll(self) -> list[str]:
        """The keys kombu's BRPOP waits on, in its order (queues, then priorities)."""
        queues = self._queue_cycle.consume(len(self.active_queues))
        return [self._q_for_pri(queue, pri) for pri in self.priority_steps for queue in queues]

    def _take_instead(self) -> bool:
        """Whether this poll takes (or waits for a message a finish took) instead of
        sending kombu's BRPOP; takes when it should."""
        if self._pending is not None:
            return True  # delivered from the wake-up, with nothing sent meanwhile
        if not (self._taking and taker is not None) or self.global_keyprefix:
            return False
        keys = self._poll_keys = self._keys_to_poll()
        if keys:
            self._in_poll = self.client.connection
            self._brpop_sent_at = monotonic()
            self._in_take = True
            self.client.connection.send_command(*taker.command(keys))
        return True

    def _take_read(self, taker: Taker, **options: Any) -> bool:
        """A take's reply: its message delivered (claimed already, if it is a journal
        entry's), or Empty, and BRPOP from the next poll on."""
        try:
            try:
                reply = self._poll_reply("FCALL", **options)
            except redis.exceptions.ResponseError as error:
                self._taking = False
                taker.refused(error)
                raise kombu_redis.Empty() from error
            taken = taker.took(reply)
            if taken is None:
                self._taking = False
                raise kombu_redis.Empty()
            self._deliver_item(*taken, by_take=True)
            return True
        finally:
            self._in_poll = None
            self._in_take = False
            self._flush_brpop_reauth()

    def _poll_reply(self, command: str, **options: Any) -> Any:
        """The reply to the BRPOP (or take) in flight; after a connection error the
        connection is dropped, so the next poll reconnects (as kombu's `_brpop_read`)."""
        try:
            return self.client.parse_response(self.client.connection, command, **options)
        except self.connection_errors:
            self.client.connection.disconnect()
            raise

    def _deliver_item(self, key: str, item: bytes, *, by_take: bool) -> None:
        """Deliver one message taken off `key` (solo: its task runs in here), then note
        what its finish found next."""
        dest = key.rsplit(self.sep, 1)[0]
        self._queue_cycle.rotate(dest)
        payload = self._decode(item, dest)
        if payload is None:
            return
        armed = taker is not None and self._armable(payload)
        if armed:
            taker.arm(self._poll_keys or self._keys_to_poll())
        self.connection._deliver(payload, dest)
        if taker is None:
            return
        sent, taken = taker.after_finish() if armed else (False, None)
        if taken is not None:
            self._pending, self._taking = taken, True
            self._wake_soon()
        elif sent:
            self._taking = False  # the finish's take found the queues empty
        elif not by_take:
            self._taking = taker.backlogged()

    def _armable(self, payload: dict[str, Any]) -> bool:
        """A finish may take the next message only for a message of one command (a
        batched one's first finish would claim it long before it starts) and with an
        event loop to deliver it from."""
        if payload.get("headers", {}).get("task") != APPLY_COMMAND_TASK:
            return False
        return self._wakeup is not None or self._open_wakeup()

    def _open_wakeup(self) -> bool:
        loop = get_event_loop()
        if loop is None:  # drain_events without a hub: nothing to be woken by
            return False
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        theirs.setblocking(False)
        loop.add_reader(ours.fileno(), self._on_wakeup)
        self._wakeup, self._wakeup_loop = (ours, theirs), loop
        return True

    def _wake_soon(self) -> None:
        if self._wakeup is not None:
            self._wakeup[1].send(b"!")

    def _on_wakeup(self) -> None:
        if self._wakeup is None:
            return
        with contextlib.suppress(BlockingIOError):
            self._wakeup[0].recv(64)
        pending, self._pending = self._pending, None
        if pending is not None and not self._closing:
            self._deliver_item(*pending, by_take=True)

    def _close_taking(self) -> None:
        """At close: a message a finish took and nothing delivered yet stays claimed
        by this process; the reaper delivers it again once its heartbeats stop."""
        if self._pending is not None:
            logger.info("a message taken but not started goes back through the reaper")
            self._pending = None
        if self._wakeup is not None:
            ours, theirs = self._wakeup
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._wakeup_loop.remove_reader(ours.fileno())
            ours.close()
            theirs.close()
            self._wakeup = None
