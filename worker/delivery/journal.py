"""The journal: what is in flight, kept in Redis next to the queue (`pipeline.lua`).

Enqueueing writes the Celery message, the session's next sequence number and a
journal entry in one atomic script call; the entry goes only when the command's
result event is published (or it is dead-lettered). Between the two, the reaper
re-enqueues whatever nobody is working on. That closes kombu's SIGKILL window
(a message taken off the queue by a worker that died before recording it), and
gives retries a durable home: a failed attempt waits in the journal, not in a
worker's memory.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any, NamedTuple

import redis

from schemas.ids import run_id_problem
from worker.delivery.keys import RedisKeys
from worker.delivery.protocol import LIMITS, arguments
from worker.delivery.scripting import PipelineScript
from worker.errors import JournalUnavailable
from worker.redis_client import as_text
from worker.settings import Settings

SCRIPT = resources.files("worker.delivery").joinpath("pipeline.lua").read_text(encoding="utf-8")
# A run's summary (counts, first failures) outlives it by a week; its per-command
# outcomes by a day (`keep_run` in pipeline.lua).
RUN_TTL_SECONDS = LIMITS["run_ttl_seconds"]
# Per-session ordering state outlives the last command of a session by a day, the
# session's own lifetime.
ORDER_TTL_SECONDS = LIMITS["order_ttl_seconds"]
# Entries a reap pass handles at most per kind (due, lost per queue, dead letters):
# bounds one script call's time (`make bench-backlog`: longest reap call 3.9 ms).
REAP_BATCH = 200
# The most commands one message may carry (`enqueue(per_message=)`): a worker's time
# limit for a batched message is this many commands' limits (`worker.runtime.app`).
MAX_COMMANDS_PER_MESSAGE = LIMITS["max_commands_per_message"]


@dataclass(frozen=True)
class Pending:
    """One command to enqueue: its JSON text, id and session (None: not ordered)."""

    text: str
    command_id: str
    session_id: str | None


@dataclass(frozen=True)
class Claim:
    """What a worker may do with a delivery: `go`, `skip`, `busy`, `park`, `dead` or
    `forged` (the message names a journal entry that holds another command)."""

    verdict: str
    deliveries: int = 0
    attempts: int = 0
    # Redis-clock ms: when the command was first enqueued, and this claim (0: unknown).
    enqueued_ms: int = 0
    claimed_ms: int = 0
    # `go`: the command's text as the journal holds it (what the producer sent).
    command: str | None = None
    # `go` with `with_copy`: the session's copy as its predecessor's finish kept it
    # (None: no copy, or not asked for).
    session_copy: str | None = None
    # `go`: the entry's queue, run and command id, for `finish`'s short way (no read of
    # the entry); queue '' when the claim does not offer it (see `finish` in pipeline.lua).
    entry_queue: str = ""
    entry_run: str = ""
    entry_cid: str = ""


@dataclass(frozen=True)
class Entry:
    """What the journal holds of one command in flight."""

    command: str
    command_id: str
    session_id: str


class ReapPass(NamedTuple):
    """What one reap pass did, the Redis clock when it ran, and whether it ran at all
    (False: another reaper holds the lease)."""

    requeued: int
    dead_workers: int
    evicted: int
    now_ms: int
    held: bool


@dataclass(frozen=True)
class DeadLetter:
    """Why a command is being dead-lettered, after how many failed attempts."""

    code: str
    error_type: str
    message: str
    attempts: int = 0


class Journal:
    """The pipeline's Redis script, one method per operation."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.client = client
        self.keys = RedisKeys(settings.key_prefix)
        self._settings = settings
        # '' with one Redis, else this shard's tag: the start of every jid and dead-letter
        # id made here (`worker.delivery.jids`), so they are unique across shards.
        self.shard_tag = settings.shard_tag
        self._script = PipelineScript(client, SCRIPT, functions=settings.redis_functions)
        self._visibility_ms = str(int(settings.visibility_timeout * 1000))
        self._heartbeat_ms = str(int(settings.heartbeat_timeout * 1000))
        # Redis's clock minus ours, ms, as the last heartbeat or reap pass read it: the
        # claim sends its estimate of Redis's clock instead of calling TIME (0 until then:
        # producers, workers and Redis on one host read one clock anyway).
        self._clock_offset_ms = 0.0
        # A claim made ahead (by a `take`, or behind a `finish`), for the claim of the
        # same (jid, worker, rest): ((jid, worker, rest), claim).
        self._taken: tuple[tuple[str, str, tuple[str, ...]], Claim] | None = None
        # (jid, worker, rest, command id, with copy) of a claim to send with the next
        # finish (`claim_with_next_finish`).
        self.claim_after_finish: tuple[str, str, tuple[str, ...], str, bool] | None = None
        # This process's last claim (how long its command had waited: `worker.runtime.taking`).
        self.last_claim: Claim | None = None
        # Set by a taker: the arguments of a `take` to send with the next `finish`, in its
        # round trip, or None for none (`worker.runtime.taking`); and what that take
        # answered (its reply, or the error Redis answered it with), until read.
        self.take_after_finish: Callable[[], list[Any] | None] | None = None
        self.after_finish: Any = None

    def redis_now_ms(self) -> int:
        """This process's estimate of Redis's clock, ms (see `_clock_offset_ms`)."""
        return int(time.time() * 1000 + self._clock_offset_ms)

    def _read_clock(self, redis_ms: Any, sent: float) -> None:
        # Redis read its clock somewhere within the round trip: take the middle.
        middle = (sent + time.time()) / 2 * 1000
        self._clock_offset_ms = int(redis_ms) - middle

    def _call(self, op: str, args: list[Any]) -> Any:
        try:
            return self._script.call(op, self.keys.prefix, *args)
        except redis.RedisError as error:
            raise JournalUnavailable(f"Redis refused the journal ({op}): {error}") from error

    # ─── Producers ───

    def enqueue_args(
        self, queue: str, batch: Sequence[Pending], run_id: str | None, per_message: int = 1
    ) -> list[str]:
        """The arguments of one `enqueue` (or, with `per_message` > 1, `enqueue_batched`)."""
        values: dict[str, Any] = {
            "queue": queue,
            "visibility_ms": self._visibility_ms,
            "run_id": run_id or "",
            "order_ttl_s": ORDER_TTL_SECONDS,
            "run_ttl_s": RUN_TTL_SECONDS,
            "shard_tag": self.shard_tag,
        }
        if per_message > 1:
            values["per_message"] = per_message
        op = "enqueue_batched" if per_message > 1 else "enqueue"
        rows = (
            {"command": p.text, "command_id": p.command_id, "session_id": p.session_id or ""}
            for p in batch
        )
        return arguments(op, values, repeated=rows)

    def enqueue(
        self,
        batches: Iterable[Sequence[Pending]],
        *,
        queue: str,
        run_id: str | None = None,
        per_message: int = 1,
    ) -> list[list[str]]:
        """Enqueue batches in one pipelined round trip; one jid per command ('' = skipped).

        `per_message` > 1 puts up to that many consecutive commands of each batch in one
        Celery message (`enqueue_batched`, task `checkout.apply_commands`); 1 sends one
        message per command (`enqueue`, task `checkout.apply_command`).
        """
        if not 1 <= per_message <= MAX_COMMANDS_PER_MESSAGE:
            raise ValueError(f"per_message must be 1..{MAX_COMMANDS_PER_MESSAGE}: {per_message}")
        if run_id and (problem := run_id_problem(run_id)):
            raise ValueError(problem)
        op = "enqueue_batched" if per_message > 1 else "enqueue"
        calls = [self.enqueue_args(queue, batch, run_id, per_message) for batch in batches]
        try:
            replies = self._pipelined(op, calls)
        except redis.RedisError as error:
            raise JournalUnavailable(f"Redis refused the enqueue: {error}") from error
        return [[as_text(jid) for jid in jids] for jids in replies]

    def _pipelined(self, op: str, calls: list[list[Any]]) -> list[Any]:
        # A pipeline is not atomic: with the library (or script) forgotten (a Redis
        # restart, FUNCTION or SCRIPT FLUSH), another client may load it while Redis is
        # still reading this pipeline, and its first calls answer "not found" while later
        # ones run. Sending the pipeline again would enqueue those later calls twice, and
        # the first ones behind them. So a pipeline of several calls loads first, in the
        # same round trip (an existing library is refused before it is compiled; a script
        # costs 65 µs, INFO commandstats); then "not found" can only answer a whole
        # single-call pipeline, or a tail after a flush: only those calls go again.
        args = [[op, self.keys.prefix, *call] for call in calls]
        replies = self._pipelined_calls(args, load_first=len(calls) > 1)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    def _pipelined_calls(self, args: list[list[Any]], *, load_first: bool) -> list[Any]:
        """Each call's reply or error, in one round trip; those that found the library
        (or script) missing go again once it is loaded (see `_pipelined`)."""
        replies = self._script.pipelined(args, load_first=load_first)
        missing = [n for n, reply in enumerate(replies) if self._script.is_missing(reply)]
        if missing:
            self._script.load()
            again = self._script.pipelined([args[n] for n in missing], load_first=False)
            for n, reply in zip(missing, again, strict=True):
                replies[n] = reply
        return replies

    # ─── Workers ───

    def claim(
        self,
        jid: str,
        worker: str,
        *,
        adopt: tuple[str, str, str] | None = None,
        rest: Sequence[str] = (),
        command_id: str = "",
        with_copy: bool = False,
    ) -> Claim:
        """Take a delivery; `adopt` = (text, command_id, queue) journals a message sent
        around `enqueue` (a plain Celery `send_task`). `rest`: the jids after this one in
        a batched message, kept from the reaper for another visibility timeout.
        `command_id`: the journaled message's command id ('' unknown); verdict `forged`
        when the entry holds another command. `with_copy`: read the session's copy in
        the same call (`Claim.session_copy`)."""
        taken, self._taken = self._taken, None
        if taken is not None and taken[0] == (jid, worker, tuple(rest)) and adopt is None:
            self.last_claim = taken[1]
            return taken[1]
        args = self._claim_args(jid, worker, adopt, rest, command_id, with_copy)
        self.last_claim = _claim_of(self._call("claim", args))
        return self.last_claim

    def _claim_args(
        self,
        jid: str,
        worker: str,
        adopt: tuple[str, str, str] | None,
        rest: Sequence[str],
        command_id: str,
        with_copy: bool,
    ) -> list[Any]:
        text, adopted_id, queue = adopt or ("", command_id, "")
        values = {
            "jid": jid,
            "worker": worker,
            "visibility_ms": self._visibility_ms,
            "heartbeat_timeout_ms": self._heartbeat_ms,
            "max_deaths": self._settings.max_retries + 1,
            "adopt_command": text,
            "adopt_command_id": adopted_id,
            "adopt_queue": queue,
            "with_copy": 1 if with_copy else 0,
            "clock_ms": self.redis_now_ms(),
        }
        rows = ({"rest_jid": later} for later in rest)
        return arguments("claim", values, repeated=rows)

    def claim_with_next_finish(
        self, jid: str, worker: str, *, rest: Sequence[str], command_id: str, with_copy: bool
    ) -> None:
        """Have the next `finish` (of the command before `jid` in its batched message)
        claim `jid` in its round trip, pipelined behind it: the `claim` of the same
        arguments then answers from that reply. Skipped if the finish dead-letters."""
        self.claim_after_finish = (jid, worker, tuple(rest), command_id, with_copy)

    # ─── Taking (a worker's event loop: `worker.runtime.taking`) ───

    def take_command(self, worker: str, queue_keys: Sequence[str], *, with_copy: bool) -> list[Any]:
        """The raw `take` call: the next message of the first of `queue_keys` that has
        one, claimed by `worker` in the same call when it is a journal entry's delivery
        (`take` in pipeline.lua). Sent and read by the caller (`took`)."""
        args = self.take_args(worker, queue_keys, with_copy=with_copy)
        return self._script.command("take", self.keys.prefix, *args)

    def take_args(self, worker: str, queue_keys: Sequence[str], *, with_copy: bool) -> list[Any]:
        """The arguments of one `take` (see `take_command`)."""
        values = {
            "worker": worker,
            "visibility_ms": self._visibility_ms,
            "heartbeat_timeout_ms": self._heartbeat_ms,
            "max_deaths": self._settings.max_retries + 1,
            "with_copy": 1 if with_copy else 0,
            "clock_ms": self.redis_now_ms(),
        }
        rows = ({"queue_key": key} for key in queue_keys)
        return arguments("take", values, repeated=rows)

    def took(self, reply: Sequence[Any], worker: str) -> tuple[str, bytes] | None:
        """What a `take` answered: (queue key, message), None when every queue was
        empty. The claim it made, if any, answers this process's next `claim`, when that
        is of the message's jid (the worker's next step)."""
        if not reply:
            return None
        if len(reply) > 3:
            self._taken = ((as_text(reply[2]), worker, ()), _claim_of(reply[3:]))
        return as_text(reply[0]), reply[1]

    def script_missing(self, error: BaseException) -> bool:
        """Whether `error` (a `take`'s reply) says Redis lost the script; loaded again
        if so, for the next call."""
        if not PipelineScript.is_missing(error):
            return False
        with _refused_as_unavailable("load"):
            self._script.load()
        return True

    def finish(
        self,
        jid: str,
        worker: str,
        *,
        event_json: str,
        outcome: str,
        dead_letter: DeadLetter | None = None,
        session_copy: tuple[str, str, int] | None = None,
        claimed: Claim | None = None,
    ) -> bool:
        """Publish the result event and forget the entry; False if already finished.
        `session_copy` = (session id, text, ttl s): keep the session's copy with it.
        `claimed`: this delivery's claim, whose entry fields spare the script a read of
        the entry when it can (`finish` in pipeline.lua)."""
        copy_session, copy_text, copy_ttl = session_copy or ("", "", 0)
        values = {
            "jid": jid,
            "worker": worker,
            "stream": self._settings.events_stream,
            "maxlen": self._settings.events_maxlen,
            "event": event_json,
            "outcome": outcome,
            "visibility_ms": self._visibility_ms,
            "run_ttl_s": RUN_TTL_SECONDS,
            "copy_session": copy_session,
            "copy_text": copy_text,
            "copy_ttl_s": copy_ttl,
            "entry_queue": claimed.entry_queue if claimed else "",
            "entry_run": claimed.entry_run if claimed else "",
            "entry_cid": claimed.entry_cid if claimed else "",
        }
        optional = dead_letter and {
            "dead_letter_code": dead_letter.code,
            "dead_letter_type": dead_letter.error_type,
            "dead_letter_message": dead_letter.message,
            "attempts": dead_letter.attempts,
        }
        args = arguments("finish", values, optional=optional or None)
        claim_next, self.claim_after_finish = self.claim_after_finish, None
        if dead_letter:
            return bool(self._call("finish", args))
        if claim_next is not None:
            return self._finish_then_claim(args, claim_next)
        take = self.take_after_finish() if self.take_after_finish else None
        if take is None:
            return bool(self._call("finish", args))
        finished, self.after_finish = self._finish_then(args, "take", take)
        return _finished(finished)

    def _finish_then_claim(
        self, finish_args: list[Any], claim: tuple[str, str, tuple[str, ...], str, bool]
    ) -> bool:
        jid, worker, rest, command_id, with_copy = claim
        claim_args = self._claim_args(jid, worker, None, rest, command_id, with_copy)
        finished, reply = self._finish_then(finish_args, "claim", claim_args)
        if not isinstance(reply, Exception):  # else the claim is asked again, alone
            self._taken = ((jid, worker, rest), _claim_of(reply))
        return _finished(finished)

    def _finish_then(self, finish_args: list[Any], op: str, args: list[Any]) -> tuple[Any, Any]:
        """`finish`, and `op` pipelined behind it: one round trip. Each one's reply, or
        the error Redis answered it with (what `op` did stands whatever the finish's)."""
        calls = [["finish", self.keys.prefix, *finish_args], [op, self.keys.prefix, *args]]
        try:
            finished, reply = self._pipelined_calls(calls, load_first=False)
        except redis.RedisError as error:
            raise JournalUnavailable(f"Redis refused the journal (finish): {error}") from error
        return finished, reply

    def retry(self, jid: str, worker: str, *, delay: float, error: BaseException) -> None:
        """Record a failed attempt; the reaper re-enqueues the command after `delay`."""
        values = {
            "jid": jid,
            "worker": worker,
            "delay_ms": int(delay * 1000),
            "error_type": type(error).__name__,
            "error_message": str(error)[:1000],
        }
        self._call("retry", arguments("retry", values))

    def heartbeat(self, worker: str, applying: str | None = None, *, clear: bool = True) -> None:
        """`worker` is alive and applying `applying`; `clear=False` when its last beat
        was idle too and it claimed nothing since (no `busy` mark to clear: one call less)."""
        if not clear and applying is None:
            # Idle since an idle beat: only the beat's time changes, and the clock
            # estimate is good enough for it (a few ms against a 10 s timeout), so one
            # ZADD instead of the script (FCALL, TIME, ZADD).
            with _refused_as_unavailable("beat"):
                self.client.zadd(self.keys.workers, {worker: self.redis_now_ms()})
            return
        values = {"worker": worker, "jid": applying or ""}
        optional = None if clear else {"clear_busy": 0}
        sent = time.time()
        now_ms = self._call("beat", arguments("beat", values, optional=optional))
        if int(now_ms) > 1:  # a script from before the beat returned the clock returns 1
            self._read_clock(now_ms, sent)

    def reap(self) -> tuple[int, int, int]:
        """A full pass without the lease; (re-enqueued, dead workers, dead letters evicted)."""
        requeued, dead, evicted, _, _ = self.reap_pass()
        return requeued, dead, evicted

    def reap_pass(self, *, owner: str = "", lease_ms: int = 0, full: bool = True) -> ReapPass:
        """Re-enqueue what nobody works on and keep the dead-letter store within its
        bounds. `full=False` looks only at retries and parked commands that are due.

        With `owner`, only while it holds the reaper lease, taken or renewed in the same
        script call.
        """
        values = {
            "visibility_ms": self._visibility_ms,
            "heartbeat_timeout_ms": self._heartbeat_ms,
            "limit": REAP_BATCH,
            "owner": owner,
            "lease_ms": lease_ms,
            "dead_letter_max": self._settings.dead_letter_max,
            "dead_letter_ttl_ms": int(self._settings.dead_letter_ttl * 1000),
            "full": 1 if full else 0,
        }
        sent = time.time()
        requeued, dead, evicted, now_ms, held = self._call("reap", arguments("reap", values))
        if int(now_ms):
            self._read_clock(now_ms, sent)
        return ReapPass(int(requeued), int(dead), int(evicted), int(now_ms), bool(held))

    def lease_holder(self) -> str | None:
        """Who holds the reaper lease now, if anyone (one GET, outside the script)."""
        with _refused_as_unavailable("lease"):
            holder = self.client.get(self.keys.reaper_lease)
        return None if holder is None else as_text(holder)

    def earliest_due_ms(self) -> int | None:
        """Redis-clock ms at which the first retry or parked re-check falls due, if any."""
        with _refused_as_unavailable("due"):
            first = self.client.zrange(self.keys.due, 0, 0, withscores=True)
        return int(first[0][1]) if first else None

    def bury(
        self, entry_id: str, *, queue: str, raw: str, event_json: str, dead_letter: DeadLetter
    ) -> None:
        """Dead-letter a message that is not a command at all, with its result event."""
        values = {
            "entry_id": entry_id,
            "stream": self._settings.events_stream,
            "maxlen": self._settings.events_maxlen,
            "event": event_json,
            "queue": queue,
            "raw": raw,
            "dead_letter_code": dead_letter.code,
            "dead_letter_type": dead_letter.error_type,
            "dead_letter_message": dead_letter.message,
        }
        self._call("bury", arguments("bury", values))

    def entry(self, jid: str) -> Entry | None:
        """The command journaled under `jid`, or None once it is finished (or never was)."""
        with _refused_as_unavailable("entry"):
            cmd, cid, sid = self.client.hmget(self.keys.journal(jid), "cmd", "cid", "sid")
        if cmd is None:
            return None
        return Entry(as_text(cmd), as_text(cid or ""), as_text(sid or ""))

    def replay(self, entry_id: str) -> str:
        """Re-enqueue a dead-lettered command: its new jid, '' if gone, 'raw' if not a command."""
        values = {
            "entry_id": entry_id,
            "visibility_ms": self._visibility_ms,
            "shard_tag": self.shard_tag,
        }
        return as_text(self._call("replay", arguments("replay", values)))


@contextmanager
def _refused_as_unavailable(what: str) -> Iterator[None]:
    """A plain read of the journal: Redis refusing it is `JournalUnavailable`."""
    try:
        yield
    except redis.RedisError as error:
        raise JournalUnavailable(f"Redis refused the journal ({what}): {error}") from error


def _in_flight_sets(client: redis.Redis, keys: RedisKeys) -> list[str]:
    """The sorted sets that together list every journaled jid: `due` (waiting, parked)
    and each queue's `queued:<queue>` (queued or running)."""
    return [keys.due, *(keys.queued(as_text(q)) for q in client.smembers(keys.queues))]


def in_flight_jids(client: redis.Redis, keys: RedisKeys) -> list[str]:
    """Every journaled jid."""
    pipe = client.pipeline(transaction=False)
    for listing in _in_flight_sets(client, keys):
        pipe.zrange(listing, 0, -1)
    return [as_text(jid) for jids in pipe.execute() for jid in jids]


def in_flight_count(client: redis.Redis, keys: RedisKeys) -> int:
    """How many commands the journal holds (the length of `in_flight_jids`)."""
    pipe = client.pipeline(transaction=False)
    for listing in _in_flight_sets(client, keys):
        pipe.zcard(listing)
    return sum(pipe.execute())


def entry_states(client: redis.Redis, keys: RedisKeys) -> dict[str, int]:
    """How many journal entries are in each state (`st`: queued, running, waiting, parked)."""
    pipe = client.pipeline(transaction=False)
    for jid in in_flight_jids(client, keys):
        pipe.hget(keys.journal(jid), "st")
    return dict(Counter(as_text(state) for state in pipe.execute() if state is not None))


def _claim_of(reply: Sequence[Any]) -> Claim:
    """A `claim` reply (pipeline.lua) as a Claim."""
    command = as_text(reply[5]) if len(reply) > 5 else None
    copy = as_text(reply[6]) if len(reply) > 6 and reply[6] else None
    numbers = (int(n) for n in reply[1:5])
    entry = [as_text(value) for value in reply[7:10]] if len(reply) > 9 else ["", "", ""]
    return Claim(
        as_text(reply[0]),
        *numbers,
        command=command,
        session_copy=copy,
        entry_queue=entry[0],
        entry_run=entry[1],
        entry_cid=entry[2],
    )


def _finished(reply: Any) -> bool:
    """A pipelined `finish` reply: whether this delivery finished the command."""
    if isinstance(reply, Exception):
        raise JournalUnavailable(f"Redis refused the journal (finish): {reply}")
    return bool(reply)
