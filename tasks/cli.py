"""`checkout`: set up tables, run a worker, send commands, read sessions and events."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from typing import IO, Any

from worker.settings import get_settings

SEND_BATCH = 1000


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    return args.run(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="checkout", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    init = commands.add_parser("init", help="create the tables and enable TTL (idempotent)")
    init.set_defaults(run=_init)

    worker = commands.add_parser("worker", help="run a Celery worker that applies commands")
    worker.add_argument("--concurrency", "-c", type=int, default=None, help="worker processes")
    worker.add_argument("--loglevel", "-l", default="INFO")
    worker.set_defaults(run=_worker)

    send = commands.add_parser("send", help="enqueue JSON-lines commands from FILE or - (stdin)")
    send.add_argument("file", metavar="FILE|-")
    send.add_argument(
        "--strict", action="store_true", help="enqueue nothing if any line is invalid"
    )
    send.set_defaults(run=_send)

    get = commands.add_parser("get", help="print a session as JSON")
    get.add_argument("session_id", metavar="SESSION_ID")
    get.set_defaults(run=_get)

    events = commands.add_parser("events", help="print result events as JSON lines")
    events.add_argument("--follow", "-f", action="store_true", help="wait for new events")
    events.add_argument("--after", default="0-0", help="stream entry id to start after")
    events.add_argument("--count", type=int, default=None, help="stop after this many")
    events.set_defaults(run=_events)
    return parser


def _init(args: argparse.Namespace) -> int:
    from worker.store import make_dynamodb_client
    from worker.store_tables import ensure_tables

    settings = get_settings()
    for action in ensure_tables(make_dynamodb_client(settings), settings):
        print(action)
    print(f"tables ready: {settings.sessions_table}, {settings.commands_table}")
    return 0


def _worker(args: argparse.Namespace) -> int:
    from worker.celery_app import app

    argv = ["worker", f"--loglevel={args.loglevel}", "-Q", get_settings().commands_queue]
    # A unique node name per process, so several workers on one host do not collide.
    argv += ["--hostname", f"checkout-{os.getpid()}@%h"]
    if args.concurrency:
        argv.append(f"--concurrency={args.concurrency}")
    app.worker_main(argv)
    return 0


def _send(args: argparse.Namespace) -> int:
    from tasks.producer import EnqueueFailed, InvalidCommand, default_producer, prepare

    send_prepared = default_producer().send_prepared
    batch: list[tuple[int, dict[str, Any]]] = []  # (line number, message body)
    sent = invalid = 0
    try:
        with _open_input(args.file) as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    batch.append((number, prepare(line)))
                except InvalidCommand as error:
                    invalid += 1
                    print(f"{args.file}:{number}: {error}", file=sys.stderr)
                if not args.strict and len(batch) >= SEND_BATCH:
                    sent += send_prepared(body for _, body in batch)
                    batch.clear()
        if not (args.strict and invalid):
            sent += send_prepared(body for _, body in batch)
            batch.clear()
    except EnqueueFailed as failure:
        first_unsent = batch[failure.sent][0]
        print(
            f"{args.file}: enqueued {sent + failure.sent} commands, then the broker failed; "
            f"line {first_unsent} and the valid lines after it were not enqueued: "
            f"{failure.__cause__}",
            file=sys.stderr,
        )
        return 2
    print(f"enqueued {sent} commands, {invalid} invalid lines", file=sys.stderr)
    return 1 if invalid else 0


def _open_input(path: str) -> IO[str]:
    if path == "-":
        return sys.stdin
    try:
        return open(path, encoding="utf-8")  # closed by the caller's `with`
    except OSError as error:
        raise SystemExit(f"checkout send: cannot read {path}: {error.strerror}") from None


def _get(args: argparse.Namespace) -> int:
    from worker.store import DynamoSessionStore

    snapshot = DynamoSessionStore.from_settings(get_settings()).load(args.session_id)
    if snapshot is None or snapshot.expired:
        state = "expired" if snapshot else "not found"
        print(f"Checkout session {state}: {args.session_id}", file=sys.stderr)
        return 1
    # What the seed's `get` returns: the item without its key and ttl.
    print(json.dumps({**snapshot.session.to_document(), "version": snapshot.version}, indent=2))
    return 0


def _events(args: argparse.Namespace) -> int:
    from worker.events import make_redis_client, read_events

    settings = get_settings()
    client = make_redis_client(settings.redis_url)
    stream = read_events(client, settings.events_stream, after=args.after, follow=args.follow)
    try:
        for _, event_json in _limit(stream, args.count):
            print(event_json, flush=True)
    except KeyboardInterrupt:
        pass
    return 0


def _limit(items: Iterator[Any], count: int | None) -> Iterator[Any]:
    for index, item in enumerate(items):
        if count is not None and index >= count:
            return
        yield item


if __name__ == "__main__":
    sys.exit(main())
