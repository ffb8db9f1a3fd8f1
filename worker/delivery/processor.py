"""One delivery of one command: claim it, apply it, finish it (or schedule its retry).

The order of steps is what makes the guarantees:
- `claim` first: a duplicate of a finished command is skipped, a command whose
  session predecessor is still journaled is parked (woken when it finishes), and a
  command that keeps killing its worker process is dead-lettered.
- the service decides and writes DynamoDB (idempotent: a replay republishes).
- `finish` publishes the event and clears the journal in one atomic step; a crash
  before it leaves the entry, and the reaper delivers the command again.
- a failure is recorded in the journal with a backoff; past `max_retries` the
  command is dead-lettered with its last error.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from schemas.commands import id_field, size_problem
from schemas.events import ResultEvent
from worker.delivery.jids import adopted_jid
from worker.delivery.journal import Claim, DeadLetter, Journal
from worker.delivery.outcomes import Outcome
from worker.delivery.retry_policy import (
    MISSING_SESSION_RETRIES,
    backoff,
    dead_letter_event_for,
    dead_letter_for,
)
from worker.delivery.session_copies import ClaimedSessionCopies
from worker.delivery.undeliverable import bury
from worker.delivery.watchdog import time_limit
from worker.errors import Transient
from worker.observability import metrics
from worker.service.apply import CheckoutService
from worker.service.results import invalid_event, outcome_of
from worker.settings import Settings

logger = logging.getLogger("checkout.worker")


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class CommandProcessor:
    """Applies deliveries of commands through the journal; one per worker process."""

    def __init__(
        self,
        service: CheckoutService,
        journal: Journal,
        settings: Settings,
        worker_id: str,
        *,
        command_time_limit: float | None = None,
        copies: ClaimedSessionCopies | None = None,
    ) -> None:
        """`command_time_limit`: seconds a command of a batched message may take (default
        `settings.command_time_limit`, what Celery gives a message of one command).
        `copies`: the store's session copies, read by the claim and kept by `finish`."""
        self._copies = copies
        self._service = service
        self._journal = journal
        self._settings = settings
        self._command_time_limit = command_time_limit or settings.command_time_limit
        self.worker_id = worker_id
        # The jid being applied now, and how many have been, for the heartbeat (see
        # `beat` in pipeline.lua and `worker.delivery.heartbeat`).
        self.applying: str | None = None
        self.claimed = 0

    @property
    def journal(self) -> Journal:
        return self._journal

    @property
    def claims_copies(self) -> bool:
        """Whether claims read the session's copy (and finishes keep it)."""
        return self._copies is not None

    def process(
        self,
        command: Any,
        *,
        jid: str | None,
        task_id: str,
        queue: str,
        rest: Sequence[str] = (),
        limit: float = 0,
    ) -> str:
        """Handle one delivery; returns what happened (an outcome, or skip/busy/park).

        `rest`: the jids after this one in its batched message (see `process_many`).
        `limit`: seconds the command may take (`worker.delivery.watchdog`); 0: Celery's limit only.
        Raises `JournalUnavailable` when Redis refuses the journal: the task fails, and
        the journal entry (if any) is delivered again later by the reaper.
        """
        adopt = None
        if jid is None:  # sent around the producer API: journal it from here on
            jid = adopted_jid(self._journal.shard_tag, task_id)
            adopt = (_as_text(command), id_field(command, "command_id") or "", queue)
        try:
            return self._process(command, jid, adopt, rest, limit, queue)
        finally:
            self.applying = None

    def process_many(self, commands: Any, *, jids: Any, task_id: str, queue: str) -> list[str]:
        """Handle one delivery of a batched message: each command in order, each through
        `process` (claim -> apply -> finish), so every guarantee stays per command: a
        finished one is skipped, one behind its session predecessor is parked (and later
        woken as a message of its own), a failure is retried or dead-lettered alone, and
        each has the time limit of a command of its own (`worker.delivery.watchdog`).

        Raises `JournalUnavailable` like `process`, at the command Redis refused: those
        after it were not claimed and are delivered again (the ones before are finished
        and skipped then).
        """
        if not isinstance(commands, list):  # not from the script: one (invalid) command
            commands = [commands]
        jids = jids if isinstance(jids, list) else []
        ids = [jid if isinstance(jid, str) and jid else None for jid in jids]
        ids = (ids + [None] * len(commands))[: len(commands)]
        outcomes = []
        renewals = _Renewals(ids, self._settings.visibility_timeout / 3)
        rest = renewals.rest_of(0)
        for n, command in enumerate(commands):
            following = n + 1 < len(commands) and ids[n + 1]
            next_rest = renewals.rest_of(n + 1) if following else []
            if following:  # its claim goes in this command's finish's round trip
                self._journal.claim_with_next_finish(
                    ids[n + 1],
                    self.worker_id,
                    rest=next_rest,
                    command_id=_checkable_id(commands[n + 1]),
                    with_copy=self.claims_copies,
                )
            try:
                outcomes.append(
                    self.process(
                        command,
                        jid=ids[n],
                        task_id=f"{task_id}.{n}",
                        queue=queue,
                        rest=rest,
                        limit=self._command_time_limit,
                    )
                )
            finally:
                self._journal.claim_after_finish = None  # not finished: claimed alone
            rest = next_rest
        return outcomes

    def _process(
        self,
        command: Any,
        jid: str,
        adopt: tuple[str, str, str] | None,
        rest: Sequence[str],
        limit: float,
        queue: str,
    ) -> str:
        claim = self._journal.claim(
            jid,
            self.worker_id,
            adopt=adopt,
            rest=rest,
            command_id=_checkable_id(command),
            with_copy=self.claims_copies,
        )
        if claim.verdict == "forged":
            return self._bury_forged(jid, command, queue)
        if claim.verdict == "dead":
            deaths = claim.deliveries - claim.attempts
            lost = DeadLetter(
                "worker_lost",
                "WorkerLost",
                f"the worker process died {deaths} times while applying this command",
                claim.attempts,
            )
            return self._dead_letter(jid, command, lost)
        if claim.verdict != "go":
            return claim.verdict
        if adopt is None and claim.command is not None:
            command = self._journaled_command(jid, command, claim.command, queue)
        too_big = adopt and size_problem(len(adopt[0].encode()), self._settings.max_command_bytes)
        if too_big:
            return self._finish(jid, command, too_long(command, too_big), claim, time.monotonic())
        self.applying = jid
        self.claimed += 1
        if self._copies is not None:
            self._copies.begin(id_field(command, "session_id"), claim.session_copy)
        started = time.monotonic()
        try:
            with time_limit(limit):
                event = self._service.apply(command, defer_if_missing=self._may_defer(claim))
        except Exception as error:  # every failure is bounded: retried, then dead-lettered
            self._kept_copy()  # dropped: the next attempt reads the table
            return self._failed(jid, command, error, claim.attempts + 1)
        return self._finish(jid, command, event, claim, started, copy=self._kept_copy())

    def _kept_copy(self) -> tuple[str, str, int] | None:
        return self._copies.end() if self._copies is not None else None

    def _finish(
        self,
        jid: str,
        command: Any,
        event: ResultEvent,
        claim: Any,
        started: float,
        *,
        copy: tuple[str, str, int] | None = None,
    ) -> str:
        if self._journal.finish(
            jid,
            self.worker_id,
            event_json=event.to_json(),
            outcome=outcome_of(event),
            session_copy=copy,
            claimed=claim if isinstance(claim, Claim) else None,
        ):
            metrics.observe_outcome(
                id_field(command, "type"),
                event.error.code if event.error else event.type,
                _since_enqueue(claim, started),
            )
        _log_outcome(event, claim.attempts, id_field(command, "type"))
        return outcome_of(event)

    def _journaled_command(self, jid: str, delivered: Any, journaled: str, queue: str) -> Any:
        """The command to apply: the journal's. A message whose body differs from its
        entry's (someone wrote to the broker) has that body dead-lettered as forged; the
        journaled command is applied all the same, so its outcome is its own."""
        command = json.loads(journaled)
        if command != delivered:
            self._bury_forged(jid, delivered, queue, reason="a body other than its entry's")
        return command

    def _bury_forged(
        self, jid: str, command: Any, queue: str, *, reason: str = "of another command"
    ) -> str:
        """A message naming journal entry `jid` with another command in its body:
        dead-lettered as undeliverable (`worker.delivery.undeliverable.bury`, which
        finishes no entry whose command the message does not carry), the entry and its
        command untouched."""
        # Without the jid: `bury` would take the message for its entry's delivery.
        body = _as_text([[command], {}, {}])
        reason = f"the message names journal entry {jid} {reason}"
        bury(
            self._journal, _as_text({"body": body}), queue=queue, reason=reason, error_type="Forged"
        )
        metrics.count_dead_letter("undeliverable")
        return Outcome("dead_lettered", f"undeliverable: {reason}")

    def _may_defer(self, claim: Any) -> bool:
        return claim.attempts < min(MISSING_SESSION_RETRIES, self._settings.max_retries)

    def _failed(self, jid: str, command: Any, error: Exception, attempts: int) -> str:
        summary = _summary(command)
        if attempts > self._settings.max_retries:
            logger.error(
                "command %s: attempt %d failed (%s: %s); dead-lettered",
                summary,
                attempts,
                type(error).__name__,
                error,
                exc_info=not isinstance(error, Transient),
            )
            return self._dead_letter(jid, command, dead_letter_for(error, attempts))
        delay = backoff(attempts - 1, cap=self._settings.retry_backoff_max)
        if isinstance(error, Transient):
            logger.warning(
                "command %s: attempt %d: %s; retrying in %.1fs", summary, attempts, error, delay
            )
        else:  # a bug: the traceback once, then one line per attempt
            logger.error(
                "command %s: attempt %d failed unexpectedly; retrying in %.1fs",
                summary,
                attempts,
                delay,
                exc_info=attempts == 1,
            )
        self._journal.retry(jid, self.worker_id, delay=delay, error=error)
        metrics.count_retry()
        return Outcome(
            "retry", f"attempt {attempts} failed ({type(error).__name__}); again in {delay:.1f}s"
        )

    def _dead_letter(self, jid: str, command: Any, reason: DeadLetter) -> str:
        event = dead_letter_event_for(jid, command, reason)
        if self._journal.finish(
            jid,
            self.worker_id,
            event_json=event.to_json(),
            outcome="dead_lettered",
            dead_letter=reason,
        ):
            metrics.count_dead_letter(reason.code)
            metrics.observe_outcome(id_field(command, "type"), "dead_lettered", None)
        return Outcome("dead_lettered", f"{reason.code}: {reason.message}")


def too_long(command: Any, problem: str) -> ResultEvent:
    """The rejection of a command past CHECKOUT_MAX_COMMAND_BYTES that reached the
    worker around the producers (a plain `send_task`): once, never retried."""
    return invalid_event(command, problem, datetime.now(UTC))


def _since_enqueue(claim: Any, started: float) -> float | None:
    """Enqueue to now: Redis's clock up to the claim, then this process's."""
    if not claim.enqueued_ms:
        return None
    return (claim.claimed_ms - claim.enqueued_ms) / 1000 + time.monotonic() - started


def _log_outcome(event: ResultEvent, attempts: int, command_type: str | None) -> None:
    # Ids and outcome only: sessions carry buyer and payment data.
    logger.info(
        "command %s on session %s: %s (version %s)",
        event.command_id,
        event.session_id,
        event.error.code if event.error else event.type,
        event.version,
        extra={
            "command_id": event.command_id,
            "session_id": event.session_id,
            "type": command_type,
            "outcome": outcome_of(event),
            "attempt": attempts + 1,
        },
    )


class _Renewals:
    """Which claims of a batched message also keep its later commands from the reaper
    (`claim`'s rest): the first, and then one every `every` seconds."""

    def __init__(self, ids: Sequence[str | None], every: float) -> None:
        self._ids = ids
        self._every = every
        self._due = 0.0

    def rest_of(self, n: int) -> list[str]:
        if time.monotonic() < self._due:
            return []
        self._due = time.monotonic() + self._every
        return [jid for jid in self._ids[n + 1 :] if jid]


def _checkable_id(command: Any) -> str:
    """The command id a claim compares with its journal entry's: a well-formed id that
    Redis gets as sent ('' otherwise: the comparison is skipped, validation rejects it)."""
    command_id = id_field(command, "command_id") or ""
    return command_id if command_id.isascii() and command_id.isprintable() else ""


def _summary(command: Any) -> str:
    return f"{id_field(command, 'type')!r} {id_field(command, 'command_id')!r}"


def _as_text(command: Any) -> str:
    text = json.dumps(command, separators=(",", ":"), ensure_ascii=False, default=str)
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate: the same JSON, escaped, is valid UTF-8
        return json.dumps(command, separators=(",", ":"), default=str)
    return text
