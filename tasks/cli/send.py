"""`checkout send`: enqueue JSON-lines commands from a file or stdin, as one run.

Streams in constant memory: lines are validated in this thread and handed, a
batch at a time, to sender threads that do the pipelined Redis writes, so parsing
and Redis's work overlap (the queues between them are bounded). Two senders, each
on a connection of its own, keep Redis busy while the other packs its next pipeline;
a session's commands always go through the same sender, so they keep file order. Every
command is counted under a run id; sending the same file again resumes the run
(the enqueue script skips what the run already finished).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import queue
import select
import shutil
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

from tasks.cli.arguments import add_command, usage_error
from tasks.cli.exit_codes import FAILED, PENDING, REDIS
from tasks.cli.progress import (
    EXIT_BROKER,
    Progress,
    add_per_message_option,
    add_wait_options,
    exit_code,
    follow_run,
    print_summary,
    run_id_arg,
)

SEND_BATCH = 1000
QUEUED_BATCHES = 2  # per sender, between the reading thread and it: bounds memory
SENDERS = 2
HASH_CHUNK = 1 << 20
PIPE_CHUNK = 1 << 16


def register(commands: argparse._SubParsersAction) -> None:
    send = add_command(
        commands,
        "send",
        FAILED,
        PENDING,
        REDIS,
        help="enqueue JSON-lines commands from FILE or - (stdin)",
    )
    send.add_argument("file", metavar="FILE|-")
    send.add_argument(
        "--strict", action="store_true", help="enqueue nothing if any line is invalid"
    )
    send.add_argument(
        "--run-id",
        type=run_id_arg,
        help="count the commands under this run (default: from FILE's content, so sending "
        "the same file again resumes its run; random for stdin, printed)",
    )
    send.add_argument("--bulk", action="store_true", help="send to the bulk queue")
    add_per_message_option(send, default="50 with --bulk, else 1")
    add_wait_options(send)
    send.set_defaults(run=run_send, check_arguments=_check_file)


def _check_file(args: argparse.Namespace) -> int:
    """A FILE it cannot read is a usage error, found before Redis is asked anything."""
    if args.file != "-" and (problem := _unreadable(args.file)):
        return usage_error("send", f"cannot read {args.file}: {problem}")
    return 0


def file_run_id(path: str) -> str:
    """The default run id of a file: a digest of its bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(HASH_CHUNK):
            digest.update(chunk)
    return f"send-{digest.hexdigest()[:24]}"


def run_send(args: argparse.Namespace) -> int:
    from tasks.producer import CommandProducer
    from worker.settings import get_settings

    if args.file != "-" and (problem := _unreadable(args.file)):
        return usage_error("send", f"cannot read {args.file}: {problem}")
    producer = CommandProducer.from_settings(
        get_settings(), bulk=args.bulk, per_message=args.per_message
    )
    with _input(args) as (path, run_id):
        if args.strict:
            invalid = _report_invalid(path, args.file)
            if invalid:
                print(f"{args.file}: {invalid} invalid lines; nothing enqueued", file=sys.stderr)
                return 1
        if not args.quiet:
            print(f"run {run_id}", file=sys.stderr, flush=True)
        outcome = _send_lines(path, args, producer, run_id)
    if outcome.failure is not None:
        print(outcome.failure, file=sys.stderr)
        return EXIT_BROKER
    if not args.quiet:
        print(f"run {run_id}: {_sent_text(outcome)}", file=sys.stderr)
    summary, done = follow_run(lambda: producer.read_run(run_id), args)
    if args.wait or args.json:
        print_summary(summary, as_json=args.json, extra={"invalid_lines": outcome.invalid})
    return exit_code(summary, waited=args.wait, done=done, invalid=outcome.invalid)


def _sent_text(outcome: _Outcome) -> str:
    """What was enqueued, and what the run had already finished (sent again: skipped)."""
    invalid = f"{outcome.invalid} invalid lines"
    if outcome.sent and outcome.skipped == outcome.sent:
        also = f", {invalid}" if outcome.invalid else ""
        return f"{outcome.sent} commands already finished; nothing to send{also}"
    enqueued = f"enqueued {outcome.sent - outcome.skipped} commands"
    if outcome.skipped:
        enqueued += f", {outcome.skipped} skipped (already finished)"
    return f"{enqueued}, {invalid}"


@contextmanager
def _input(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    """(path to read, run id); stdin is spooled to a file only for --strict (two passes)."""
    if args.file != "-":
        yield args.file, args.run_id or file_run_id(args.file)
        return
    run_id = args.run_id or f"send-{uuid.uuid4().hex[:24]}"
    if not args.strict:
        yield "-", run_id
        return
    with tempfile.NamedTemporaryFile("w+b", suffix=".jsonl") as spool:
        shutil.copyfileobj(sys.stdin.buffer, spool)
        spool.flush()
        yield spool.name, run_id


def _unreadable(path: str) -> str | None:
    """Why FILE cannot be read (a usage error, found before anything is sent), or None."""
    try:
        with open(path, "rb"):
            return None
    except OSError as error:
        return error.strerror or str(error)


def _lines(path: str) -> IO[bytes]:
    # Bytes: each line is decoded by itself, so a line that is not UTF-8 is one invalid
    # line (`_text`), not the end of the send.
    return sys.stdin.buffer if path == "-" else open(path, "rb")  # closed by the caller


def _text(line: bytes) -> str:
    """The line as text; `InvalidCommand` saying where if it is not UTF-8."""
    from tasks.producer import InvalidCommand

    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as error:
        column = len(line[: error.start].decode("utf-8")) + 1  # in characters, as editors count
        raise InvalidCommand(
            f"not UTF-8 text (byte 0x{line[error.start]:02x} at column {column})"
        ) from None


def _numbered_until_idle(lines: IO[bytes]) -> Iterator[tuple[int, bytes | None]]:
    """(line number, line), and (0, None) whenever a pipe has nothing more right now.

    Batches are sent when full; a producer piping commands slowly (`tail -f ... |
    checkout send -`) must not have them held until a thousand have come, so the
    reader says when the input would block and a partial batch goes then.
    """
    if lines.seekable():  # a file is never idle
        yield from enumerate(lines, start=1)
        return
    fd, number, rest = lines.fileno(), 0, b""
    while True:
        if not select.select([fd], [], [], 0)[0]:
            yield 0, None
        chunk = os.read(fd, PIPE_CHUNK)
        # A newline byte is never part of a multi-byte UTF-8 character: split, then decode.
        *complete, rest = (rest + chunk).split(b"\n")
        for line in complete:
            number += 1
            yield number, line + b"\n"
        if not chunk:
            if rest:
                yield number + 1, rest
            return


def _report_invalid(path: str, shown: str) -> int:
    """The first pass of --strict: validate every line, enqueue nothing."""
    from tasks.producer import InvalidCommand, prepare

    invalid = 0
    with _lines(path) as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    prepare(_text(line))
                except InvalidCommand as error:
                    invalid += 1
                    print(f"{shown}:{number}: {error}", file=sys.stderr)
    return invalid


@dataclass
class _Outcome:
    sent: int = 0  # handed to Redis, skipped ones included
    skipped: int = 0  # the run had already finished them
    invalid: int = 0
    failure: str | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class _Lane:
    """One sender thread and what the reader has gathered for it."""

    batches: queue.Queue
    thread: threading.Thread
    numbers: list[int] = field(default_factory=list)
    pending: list[Any] = field(default_factory=list)


def _send_lines(path: str, args: argparse.Namespace, producer: Any, run_id: str) -> _Outcome:
    """Validate lines here, enqueue them in the sender threads; constant memory."""
    from tasks.producer import InvalidCommand, prepare

    outcome = _Outcome()
    # A sender waits on Redis with the GIL released; when the reply comes it must not
    # wait the default 5 ms for this validating thread to hand the GIL back.
    sys.setswitchinterval(0.0005)
    lanes = [_start_lane(producer, run_id, outcome, args.file) for _ in range(SENDERS)]
    with Progress("enqueueing", quiet=args.quiet) as progress, _lines(path) as lines:
        for number, line in _numbered_until_idle(lines):
            if line is None:  # a pipe with nothing more for now: send what is gathered
                if not all(_flush(lane, outcome) for lane in lanes):
                    break
                continue
            if not line.strip():
                continue
            try:
                command = prepare(_text(line))
            except InvalidCommand as error:
                outcome.invalid += 1
                print(f"{args.file}:{number}: {error}", file=sys.stderr)
                continue
            lane = lanes[hash(command.session_id) % SENDERS]
            lane.numbers.append(number)
            lane.pending.append(command)
            if len(lane.pending) >= SEND_BATCH:
                if not _flush(lane, outcome):
                    break
                progress.update(outcome.sent, note=f"{outcome.invalid} invalid")
        for lane in lanes:
            _flush(lane, outcome)
            _hand_over(lane.batches, None, outcome)
        for lane in lanes:
            lane.thread.join()
        progress.update(outcome.sent, note=f"{outcome.invalid} invalid")
    return outcome


def _start_lane(producer: Any, run_id: str, outcome: _Outcome, shown: str) -> _Lane:
    batches: queue.Queue = queue.Queue(QUEUED_BATCHES)
    # redis-py is thread-safe: each pipeline takes a connection of its own from the pool.
    thread = threading.Thread(
        target=_sender, args=(batches, producer, run_id, outcome, shown), daemon=True
    )
    thread.start()
    return _Lane(batches, thread)


def _flush(lane: _Lane, outcome: _Outcome) -> bool:
    if not lane.pending:
        return True
    handed = _hand_over(lane.batches, (lane.numbers, lane.pending), outcome)
    lane.numbers, lane.pending = [], []
    return handed


def _hand_over(batches: queue.Queue, item: Any, outcome: _Outcome) -> bool:
    """Queue `item` for the sender unless it has stopped (a broker failure)."""
    while not outcome.stop.is_set():
        try:
            batches.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _sender(
    batches: queue.Queue, producer: Any, run_id: str, outcome: _Outcome, shown: str
) -> None:
    from tasks.producer import EnqueueFailed

    try:
        while (item := batches.get()) is not None:
            numbers, pending = item
            try:
                sent = producer.send_counted(pending, run_id=run_id)
            except EnqueueFailed as failure:
                with outcome.lock:
                    outcome.sent += failure.sent
                    # With shards, each shard's part went in order: from the batch's
                    # first line on, not every line was enqueued.
                    first = numbers[failure.sent if failure.in_order else 0]
                    outcome.failure = outcome.failure or (
                        f"{shown}: enqueued {outcome.sent} commands, then the broker failed; "
                        f"line {first} and the valid lines after it were not "
                        f"all enqueued (send the file again: its run skips what is done): "
                        f"{failure.__cause__}"
                    )
                outcome.stop.set()
                return
            with outcome.lock:
                outcome.sent += sent.handed
                outcome.skipped += sent.skipped
    except BaseException:
        outcome.stop.set()
        raise
