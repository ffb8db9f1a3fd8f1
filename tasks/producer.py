"""Enqueueing checkout commands: the API producers call.

Commands are validated here, before they reach the queue, so a producer learns
about a bad command at once and with the field that is wrong. Then each goes to
Redis through the pipeline's one enqueue script (`worker/delivery/pipeline.lua`): the
Celery message, the session's sequence number and the journal entry in one
atomic step, batched and pipelined. Every other language's producer runs the
same script, so what it enqueues is indistinguishable from this.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError

from schemas.commands import Command, describe_validation_error, parse_command, size_problem
from tasks.shards import ShardSet
from worker.delivery.journal import Journal, Pending
from worker.delivery.runs import RunSummary, read_run
from worker.delivery.shard_records import shown_url
from worker.delivery.shards import shard_for
from worker.errors import JournalUnavailable
from worker.redis_client import make_redis_client
from worker.settings import Settings, get_settings

CommandInput = Command | Mapping[str, Any] | str | bytes
# Commands per script call, and calls per pipelined round trip: big enough to
# amortise the round trip and the script call, small enough not to stall Redis.
SCRIPT_BATCH = 100
PIPELINE_CALLS = 10
# Commands per Celery message on the bulk queue (`enqueue_batched`). Celery's own cost
# per message, about 2.4 ms of a worker's main process (fetch, decode, bookkeeping,
# hand-off to a pool process, ack), is then shared by 50 commands: under 0.05 ms each,
# where twice as many would save only 0.02 ms more. Bigger messages cost elsewhere: a
# message's last command waits for all before it (50 x a few ms: a fraction of a
# second, fine for bulk, not for an order flow), and a pool process lost mid-message
# sends up to this many commands through redelivery again (each finished one is
# skipped at claim: one Redis call). Interactive sends stay one command per message.
# SCRIPT_BATCH is a multiple of it, so the script calls of a big send fill whole messages.
BULK_COMMANDS_PER_MESSAGE = 50


class InvalidCommand(ValueError):
    """Raised when a command does not validate; nothing has been enqueued for it."""


class ShardFailed(RuntimeError):
    """What failed, named by its shard (the `cause` of a sharded `EnqueueFailed`)."""


class EnqueueFailed(RuntimeError):
    """Raised when Redis fails mid-way; `sent` commands were enqueued: the first `sent`
    (`in_order`), or with several shards that many in all, each shard's first ones."""

    def __init__(self, sent: int, cause: Exception, *, in_order: bool = True) -> None:
        super().__init__(f"Redis failed after {sent} commands were enqueued: {cause}")
        self.sent = sent
        self.in_order = in_order


@dataclass(frozen=True)
class Sent:
    """What `CommandProducer.send_counted` handed to Redis."""

    handed: int  # commands handed to the enqueue script
    skipped: int = 0  # of those, commands the run had already finished (not enqueued again)


def prepare(command: CommandInput) -> Pending:
    """Validate `command` and return what the enqueue script takes for it.

    Raises `InvalidCommand` for a command that does not validate, cannot be sent as
    UTF-8 JSON, or is longer than CHECKOUT_MAX_COMMAND_BYTES.
    """
    text = None
    if isinstance(command, str | bytes):
        # Valid JSON text goes as it came: the worker validates it with the same model,
        # so it means what the parsed command means, and re-serialising costs a tenth
        # of a bulk send.
        text = command.decode() if isinstance(command, bytes) else command.strip()
        _check_size(len(command) if isinstance(command, bytes) else _utf8_length(text))
    if not isinstance(command, BaseModel):
        try:
            command = parse_command(command)
        except ValidationError as error:
            raise InvalidCommand(describe_validation_error(error, model=Command)) from None
    if text is None:
        # exclude_unset keeps the seed's partial-update meaning: absent is not null.
        try:
            text = command.model_dump_json(exclude_unset=True)
        except PydanticSerializationError as error:
            raise InvalidCommand(f"the command cannot be sent as UTF-8 JSON: {error}") from None
        _check_size(_utf8_length(text))
    return Pending(text, command.command_id, command.session_id)


def _utf8_length(text: str) -> int:
    # surrogatepass: a lone surrogate is refused by validation, with its place named.
    return len(text.encode(errors="surrogatepass"))


def _check_size(size: int) -> None:
    problem = size_problem(size, get_settings().max_command_bytes)
    if problem:
        raise InvalidCommand(problem)


class _Producing:
    """What both producers offer on top of their `send_counted` (one Redis, or shards)."""

    def enqueue(self, command: CommandInput) -> str:
        """Validate and enqueue one command; returns its `command_id`."""
        pending = prepare(command)
        self.send_prepared([pending])
        return pending.command_id

    def enqueue_many(self, commands: Iterable[CommandInput], *, run_id: str | None = None) -> int:
        """Validate every command, then enqueue them all in pipelined batches.

        Raises `InvalidCommand` naming the first bad command's position, before
        anything is enqueued. With `run_id`, outcomes are counted for
        `checkout report` and a command the run already finished is skipped.
        """
        prepared = []
        for position, command in enumerate(commands):
            try:
                prepared.append(prepare(command))
            except InvalidCommand as error:
                raise InvalidCommand(f"command {position}: {error}") from None
        return self.send_prepared(prepared, run_id=run_id)

    def send_prepared(self, pending: Iterable[Pending], *, run_id: str | None = None) -> int:
        """Enqueue what `prepare` returned; returns how many were handed to Redis.

        Raises `EnqueueFailed` saying how many were enqueued when Redis fails, and
        `ValueError` before anything is sent for a run id `schemas.ids` refuses.
        """
        return self.send_counted(pending, run_id=run_id).handed

    def send_counted(self, pending: Iterable[Pending], *, run_id: str | None = None) -> Sent:
        raise NotImplementedError


class CommandProducer(_Producing):
    """Sends validated commands to a queue (interactive or bulk), `per_message` commands
    to a Celery message."""

    def __init__(self, journal: Journal, *, queue: str, per_message: int = 1) -> None:
        self.journal = journal
        self.queue = queue
        self.per_message = per_message

    @classmethod
    def from_settings(
        cls, settings: Settings, *, bulk: bool = False, per_message: int | None = None
    ) -> CommandProducer | ShardedProducer:
        """A producer for the interactive queue, one command a message, or with `bulk`
        for the bulk queue, BULK_COMMANDS_PER_MESSAGE a message (`per_message` overrides).
        With several shards (CHECKOUT_REDIS_URLS), one that routes each command to its
        session's shard, once the shards' records agree with the list."""
        if per_message is None:
            per_message = BULK_COMMANDS_PER_MESSAGE if bulk else 1
        queue = settings.bulk_queue if bulk else settings.commands_queue
        shards = ShardSet(settings)
        if shards.count > 1:
            shards.check()
            return ShardedProducer(shards, queue=queue, per_message=per_message)
        journal = Journal(make_redis_client(settings.redis_url), settings)
        return cls(journal, queue=queue, per_message=per_message)

    def read_run(self, run_id: str) -> RunSummary:
        """The run's summary as its shard counts it."""
        return read_run(self.journal.client, self.journal.keys, run_id)

    def send_counted(self, pending: Iterable[Pending], *, run_id: str | None = None) -> Sent:
        """`send_prepared`, also counting the commands the run had already finished
        (the enqueue script's '' jids): `checkout send` of a finished file says so."""
        handed = skipped = 0
        for round_trip in _chunks(_chunks(pending, SCRIPT_BATCH), PIPELINE_CALLS):
            try:
                replies = self.journal.enqueue(
                    round_trip, queue=self.queue, run_id=run_id, per_message=self.per_message
                )
            except (JournalUnavailable, OSError) as error:
                raise EnqueueFailed(handed, error) from error
            handed += sum(len(batch) for batch in round_trip)
            skipped += sum(1 for jids in replies for jid in jids if not jid)
        return Sent(handed, skipped)


class ShardedProducer(_Producing):
    """`CommandProducer`'s interface over several shards: each command goes to its
    session's shard (`worker.delivery.shards`), in the order given, so every session
    keeps its order (its commands all go to one shard, one after the other)."""

    def __init__(self, shards: ShardSet, *, queue: str, per_message: int = 1) -> None:
        self.shards = shards
        self.queue = queue
        self.per_message = per_message
        self.producers = [
            CommandProducer(
                Journal(client, shards.settings.for_shard(n)), queue=queue, per_message=per_message
            )
            for n, client in enumerate(shards.clients)
        ]

    def send_counted(self, pending: Iterable[Pending], *, run_id: str | None = None) -> Sent:
        """Route and send, a round of SCRIPT_BATCH x PIPELINE_CALLS commands at a time, each shard's
        part of a round in one pipelined call chain. `EnqueueFailed.sent` then counts what
        was enqueued, on every shard: not the first `sent` of the input."""
        handed = skipped = 0
        count = self.shards.count
        for round_ in _chunks(pending, SCRIPT_BATCH * PIPELINE_CALLS):
            parts: list[list[Pending]] = [[] for _ in range(count)]
            for item in round_:
                parts[shard_for(item.session_id, item.command_id, count)].append(item)
            for shard, part in enumerate(parts):
                if not part:
                    continue
                try:
                    sent = self.producers[shard].send_counted(part, run_id=run_id)
                except EnqueueFailed as error:
                    where = shown_url(self.shards.urls[shard])
                    root = error.__cause__ or error
                    cause = ShardFailed(f"shard {shard} ({where}): {root}")
                    cause.__cause__ = root
                    raise EnqueueFailed(handed + error.sent, cause, in_order=False) from cause
                handed += sent.handed
                skipped += sent.skipped
        return Sent(handed, skipped)

    def read_run(self, run_id: str) -> RunSummary:
        """The run's summary over every shard."""
        return self.shards.read_run(run_id)


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


@lru_cache(maxsize=2)
def default_producer(*, bulk: bool = False) -> CommandProducer | ShardedProducer:
    """The producer configured from the environment (`CHECKOUT_*`)."""
    return CommandProducer.from_settings(get_settings(), bulk=bulk)


def enqueue(command: CommandInput) -> str:
    """Validate and enqueue one command with the default producer; returns its id."""
    return default_producer().enqueue(command)


def enqueue_many(
    commands: Iterable[CommandInput], *, run_id: str | None = None, bulk: bool = False
) -> int:
    """Validate all commands, then enqueue them with the default producer."""
    return default_producer(bulk=bulk).enqueue_many(commands, run_id=run_id)
