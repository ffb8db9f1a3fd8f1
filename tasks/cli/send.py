"""`checkout send`: enqueue JSON-lines commands from a file or stdin."""

from __future__ import annotations

import argparse
import sys
from typing import IO, Any

SEND_BATCH = 1000


def register(commands: argparse._SubParsersAction) -> None:
    send = commands.add_parser("send", help="enqueue JSON-lines commands from FILE or - (stdin)")
    send.add_argument("file", metavar="FILE|-")
    send.add_argument(
        "--strict", action="store_true", help="enqueue nothing if any line is invalid"
    )
    send.set_defaults(run=run_send)


def run_send(args: argparse.Namespace) -> int:
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
