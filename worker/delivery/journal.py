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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import redis
from redis.exceptions import NoScriptError

from worker.delivery.keys import RedisKeys
from worker.errors import JournalUnavailable
from worker.redis_client import as_text
from worker.settings import Settings

SCRIPT = resources.files("worker.delivery").joinpath("pipeline.lua").read_text(encoding="utf-8")
# A run's summary outlives it by a week, as command records do.
RUN_TTL_SECONDS = 7 * 24 * 3600
# Per-session sequence counters outlive the last command of a session by this much.
ORDER_TTL_SECONDS = 7 * 24 * 3600
REAP_BATCH = 500
# The most commands one message may carry (`enqueue(per_message=)`): a worker's time
# limit for a batched message is this many commands' limits (`worker.runtime.app`).
MAX_COMMANDS_PER_MESSAGE = 100


@dataclass(frozen=True)
class Pending:
    """One command to enqueue: its JSON text, id and session (None: not ordered)."""

    text: str
    command_id: str
    session_id: str | None


@dataclass(frozen=True)
class Claim:
    """What a worker may do with a delivery: `go`, `skip`, `busy`, `park` or `dead`."""

    verdict: str
    deliveries: int = 0
    attempts: int = 0
    # Redis-clock ms: when the command was first enqueued, and this claim (0: unknown).
    enqueued_ms: int = 0
    claimed_ms: int = 0


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
        self._script = client.register_script(SCRIPT)
        self._visibility_ms = str(int(settings.visibility_timeout * 1000))
        self._heartbeat_ms = str(int(settings.heartbeat_timeout * 1000))

    def _call(self, op: str, *args: Any) -> Any:
        try:
            return self._script(args=[op, self.keys.prefix, *args])
        except redis.RedisError as error:
            raise JournalUnavailable(f"Redis refused the journal ({op}): {error}") from error

    # ─── Producers ───

    def enqueue_args(
        self, queue: str, batch: Sequence[Pending], run_id: str | None, per_message: int = 1
    ) -> list[str]:
        args = [queue, self._visibility_ms, run_id or "", ORDER_TTL_SECONDS, RUN_TTL_SECONDS]
        if per_message > 1:
            args.append(per_message)
        for pending in batch:
            args += [pending.text, pending.command_id, pending.session_id or ""]
        return args

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
        op = "enqueue_batched" if per_message > 1 else "enqueue"
        calls = [self.enqueue_args(queue, batch, run_id, per_message) for batch in batches]
        try:
            replies = self._evalsha_pipelined(op, calls)
        except redis.RedisError as error:
            raise JournalUnavailable(f"Redis refused the enqueue: {error}") from error
        return [[as_text(jid) for jid in jids] for jids in replies]

    def _evalsha_pipelined(self, op: str, calls: list[list[Any]]) -> list[Any]:
        # Plain EVALSHA, not redis-py's Script in a pipeline: that one asks SCRIPT EXISTS
        # before every pipeline, a blocking round trip that cost a sixth of a bulk send.
        # A pipeline is not atomic: with the script forgotten (a Redis restart, SCRIPT
        # FLUSH), another client may load it while Redis is still reading this pipeline,
        # and its first calls answer NOSCRIPT while later ones run. Sending the pipeline
        # again would enqueue those later calls twice, and the first ones behind them.
        # So a pipeline of several calls loads the script first, in the same round trip
        # (22 kB: 65 µs of Redis time, INFO commandstats); then NOSCRIPT can only answer a whole
        # single-call pipeline, or a tail after a SCRIPT FLUSH: only those calls go again.
        replies = self._pipeline(op, calls, load_first=len(calls) > 1)
        missing = [n for n, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            self._script.sha = self.client.script_load(SCRIPT)
            again = self._pipeline(op, [calls[n] for n in missing], load_first=False)
            for n, reply in zip(missing, again, strict=True):
                replies[n] = reply
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    def _pipeline(self, op: str, calls: list[list[Any]], *, load_first: bool) -> list[Any]:
        """One round trip: each call's reply, or the error Redis answered it with."""
        pipe = self.client.pipeline(transaction=False)
        if load_first:
            pipe.script_load(SCRIPT)
        for args in calls:
            pipe.evalsha(self._script.sha, 0, op, self.keys.prefix, *args)
        replies = pipe.execute(raise_on_error=False)
        return replies[1:] if load_first else replies

    # ─── Workers ───

    def claim(
        self,
        jid: str,
        worker: str,
        *,
        adopt: tuple[str, str, str] | None = None,
        rest: Sequence[str] = (),
    ) -> Claim:
        """Take a delivery; `adopt` = (text, command_id, queue) journals a message sent
        around `enqueue` (a plain Celery `send_task`). `rest`: the jids after this one in
        a batched message, kept from the reaper for another visibility timeout."""
        text, command_id, queue = adopt or ("", "", "")
        reply = self._call(
            "claim",
            jid,
            worker,
            self._visibility_ms,
            self._heartbeat_ms,
            self._settings.max_retries + 1,
            text,
            command_id,
            queue,
            *rest,
        )
        return Claim(as_text(reply[0]), *(int(n) for n in reply[1:5]))

    def finish(
        self,
        jid: str,
        worker: str,
        *,
        event_json: str,
        outcome: str,
        dead_letter: DeadLetter | None = None,
    ) -> bool:
        """Publish the result event and forget the entry; False if already finished."""
        args = [
            jid,
            worker,
            self._settings.events_stream,
            self._settings.events_maxlen,
            event_json,
            outcome,
            self._visibility_ms,
            RUN_TTL_SECONDS,
        ]
        if dead_letter:
            args += [
                dead_letter.code,
                dead_letter.error_type,
                dead_letter.message,
                dead_letter.attempts,
            ]
        return bool(self._call("finish", *args))

    def retry(self, jid: str, worker: str, *, delay: float, error: BaseException) -> None:
        """Record a failed attempt; the reaper re-enqueues the command after `delay`."""
        self._call("retry", jid, worker, int(delay * 1000), type(error).__name__, str(error)[:1000])

    def heartbeat(self, worker: str, applying: str | None = None) -> None:
        self._call("beat", worker, applying or "")

    def reap(self, *, owner: str = "", lease_ms: int = 0) -> tuple[int, int]:
        """Re-enqueue what nobody works on; returns (re-enqueued, dead workers).

        With `owner`, only while it holds the reaper lease, taken or renewed in the same
        script call (one round trip a tick, not four).
        """
        requeued, dead = self._call(
            "reap", self._visibility_ms, self._heartbeat_ms, REAP_BATCH, owner, lease_ms
        )
        return int(requeued), int(dead)

    def bury(
        self, entry_id: str, *, queue: str, raw: str, event_json: str, dead_letter: DeadLetter
    ) -> None:
        """Dead-letter a message that is not a command at all, with its result event."""
        self._call(
            "bury",
            entry_id,
            self._settings.events_stream,
            self._settings.events_maxlen,
            event_json,
            queue,
            raw,
            dead_letter.code,
            dead_letter.error_type,
            dead_letter.message,
        )

    def replay(self, entry_id: str) -> str:
        """Re-enqueue a dead-lettered command: its new jid, '' if gone, 'raw' if not a command."""
        return as_text(self._call("replay", entry_id, self._visibility_ms))
